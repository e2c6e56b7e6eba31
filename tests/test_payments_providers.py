"""The file-based payment providers (mobile money, cash pay-lists, prepaid cards): files written
whole, checked again from the files alone, the sandbox's answers read back, result files with
a bad line refused by its line number, and amounts exact."""

import csv
import shutil
import subprocess
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sijill.core.errors import InvalidInput
from sijill.core.settings import Settings
from sijill.payments.amounts import format_minor, parse_minor
from sijill.payments.paylist import CashAgent
from sijill.payments.provider_files import MobileMoney, PrepaidCard
from sijill.payments.providers import (
    FAILED,
    PAID,
    PROVIDERS,
    RETURNED,
    BatchHeader,
    PaymentLine,
    folder_digest,
)

ARABIC = ("محمد أحمد العلي", "فاطمة حسن", "عبد الله يوسف")
LATIN = ("Amina Ben Salah", "Youssef El Idrissi", "Leila Haddad")


def header(provider: str, amounts: list[int], minor_units: int = 3) -> BatchHeader:
    return BatchHeader(
        reference="SIJILL-2026-11-B7", provider=provider, currency="JOD",
        minor_units=minor_units, value_date=date(2026, 11, 5),
        created_at=datetime(2026, 11, 1, tzinfo=UTC), payments=len(amounts),
        total_minor=sum(amounts), remittance="SIJILL 2026-11", area="JO-IR",
    )  # fmt: skip


def wallet_lines(amounts: list[int]) -> list[PaymentLine]:
    names = ARABIC + LATIN
    return [
        PaymentLine(
            transfer_ref=f"T{i:06d}",
            amount_minor=amount,
            registry_id=f"H{i:05d}",
            details={"holder": names[i % len(names)], "phone": f"+9627912{i:05d}"},
        )  # fmt: skip
        for i, amount in enumerate(amounts)
    ]


def card_lines(amounts: list[int]) -> list[PaymentLine]:
    return [
        PaymentLine(
            transfer_ref=f"C{i:06d}",
            amount_minor=amount,
            registry_id=f"H{i:05d}",
            details={"holder": LATIN[i % 3], "card_number": f"40000000{i:08d}"},
        )  # fmt: skip
        for i, amount in enumerate(amounts)
    ]


def cash_lines(amounts: list[int]) -> list[PaymentLine]:
    # Given out of order: the pay-list sorts by point, then reference.
    points = ("Post office Irbid Centre", "مكتب بريد الرمثا")
    lines = [
        PaymentLine(
            transfer_ref=f"K{i:06d}",
            amount_minor=amount,
            registry_id=f"1000-{i:04d}-7",
            details={"holder": (ARABIC + LATIN)[i % 6], "point": points[i % 2 if i < 6 else 0]},
        )  # fmt: skip
        for i, amount in enumerate(amounts)
    ]
    return lines[::-1]


def results(provider, path: Path) -> dict[str, tuple]:
    _header, lines = provider.read_report(path)
    return {line.reference: (line.outcome, line.status, line.reason) for line in lines}


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


# --- amounts -----------------------------------------------------------------------------------


@given(st.integers(min_value=-(10**20), max_value=10**20), st.integers(min_value=0, max_value=4))
def test_amounts_round_trip_exactly(amount, minor_units):
    text = format_minor(amount, minor_units)
    assert parse_minor(text, minor_units) == amount
    assert len(text.partition(".")[2]) == minor_units


def test_amounts_are_written_with_the_currency_decimals():
    assert format_minor(12500, 3) == "12.500"
    assert format_minor(5, 2) == "0.05"
    assert format_minor(-5, 2) == "-0.05"
    assert format_minor(700, 0) == "700"
    assert parse_minor("12.5", 3) == 12500
    assert parse_minor("0.07", 2) == 7
    # 0.1 + 0.2 is not 0.3 in floating point; in minor units it is.
    assert parse_minor("0.1", 2) + parse_minor("0.2", 2) == parse_minor("0.3", 2)


@pytest.mark.parametrize("text", ["1.2345", "1.5", "1e3", "1,000", " 1", "+1", "1.", ".5", ""])
def test_amounts_beyond_the_currency_or_not_plain_digits_are_refused(text):
    with pytest.raises(ValueError):
        parse_minor(text, 3 if text != "1.5" else 0)


def test_an_amount_is_never_a_float():
    with pytest.raises(TypeError):
        format_minor(12.5, 2)
    with pytest.raises(TypeError):
        format_minor(True, 2)


# --- mobile money ------------------------------------------------------------------------------


def test_the_file_providers_are_registered():
    assert PROVIDERS["mobile_money"] is MobileMoney
    assert PROVIDERS["cash_agent"] is CashAgent
    assert PROVIDERS["card"] is PrepaidCard


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_mobile_money_file_written_checked_and_answered(tmp_path, kind):
    provider = MobileMoney(Settings(mobile_money_format=kind))
    amounts = [50000 + i * 125 for i in range(40)]
    folder = tmp_path / "batch"
    names = provider.write(header("mobile_money", amounts), wallet_lines(amounts), folder)
    assert names == [f"mobile-money.{kind}"]
    assert sorted(p.name for p in folder.iterdir()) == names
    path = folder / names[0]
    if kind == "json":
        document = orjson.loads(path.read_bytes())  # one JSON document, whole
        assert document["batch"]["total"] == format_minor(sum(amounts), 3)
        assert document["batch"]["payments"] == "40"
        assert document["payments"][1] == {
            "reference": "T000001", "msisdn": "+962791200001", "holder": ARABIC[1],
            "amount": "50.125",
        }  # fmt: skip
    else:
        rows = list(csv.reader(path.open(encoding="utf-8", newline="")))
        assert rows[1][3:6] == ["2026-11-05", "40", format_minor(sum(amounts), 3)]
        assert rows[3] == ["T000000", "+962791200000", ARABIC[0], "50.000"]
        assert len(rows) == 43
    provider.validate(folder)

    answered = provider.answer(folder, tmp_path / "result.csv", fail_one_in=10, seed=7)
    outcomes = results(provider, answered)
    assert set(outcomes) == {f"T{i:06d}" for i in range(40)}
    assert Counter(o[0] for o in outcomes.values()) == {PAID: 36, FAILED: 4}
    assert all(o[2] in MobileMoney.FAILURES for o in outcomes.values() if o[0] == FAILED)
    # The same seed answers the same way.
    again = provider.answer(folder, tmp_path / "again.csv", fail_one_in=10, seed=7)
    assert again.read_bytes() == answered.read_bytes()


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_a_mobile_money_file_changed_after_writing_is_caught(tmp_path, kind):
    provider = MobileMoney(Settings(mobile_money_format=kind))
    amounts = [10000, 20000, 30000]
    folder = tmp_path / "batch"
    (name,) = provider.write(header("mobile_money", amounts), wallet_lines(amounts), folder)
    written = folder_digest(folder)

    replace_in(folder / name, ARABIC[1], "Someone Else")
    assert folder_digest(folder) != written  # a name changed: only the hash can tell

    replace_in(folder / name, "20.000", "200.000")
    with pytest.raises(InvalidInput, match=r"add up to 240\.000, the header says 60\.000"):
        provider.validate(folder)


def test_a_mobile_money_line_removed_is_caught(tmp_path):
    provider = MobileMoney(Settings(mobile_money_format="csv"))
    amounts = [10000, 20000, 30000]
    folder = tmp_path / "batch"
    (name,) = provider.write(header("mobile_money", amounts), wallet_lines(amounts), folder)
    lines = (folder / name).read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / name).write_text("".join(lines[:-1]), encoding="utf-8")
    with pytest.raises(InvalidInput, match="2 payment lines, the header says 3"):
        provider.validate(folder)


def test_a_json_file_cut_short_is_caught(tmp_path):
    provider = MobileMoney(Settings(mobile_money_format="json"))
    folder = tmp_path / "batch"
    (name,) = provider.write(
        header("mobile_money", [1000, 2000]), wallet_lines([1000, 2000]), folder
    )
    text = (folder / name).read_bytes()
    (folder / name).write_bytes(text[: text.rindex(b"]}")])
    with pytest.raises(InvalidInput, match="ends before its last line"):
        provider.validate(folder)


def test_lines_that_do_not_match_the_header_leave_no_file(tmp_path):
    provider = MobileMoney(Settings())
    folder = tmp_path / "batch"
    with pytest.raises(InvalidInput, match="its lines are 2 payments for 3.000, its header says 3"):
        provider.write(
            header("mobile_money", [1000, 2000, 3000]), wallet_lines([1000, 2000]), folder
        )
    assert list(folder.iterdir()) == []


def test_a_wrong_phone_is_refused_by_line_without_quoting_it(tmp_path):
    lines = wallet_lines([1000, 2000])
    lines[1] = PaymentLine("T000001", 2000, "H1", {"holder": LATIN[0], "phone": "0791234567"})
    with pytest.raises(InvalidInput) as refused:
        MobileMoney(Settings()).write(header("mobile_money", [1000, 2000]), lines, tmp_path / "b")
    assert str(refused.value) == "payment line 2: the wallet's phone is not in E.164 form"


def test_a_file_is_written_under_its_final_name_only_once_whole(tmp_path):
    """While the lines are still coming, only `<name>.part` exists; the lines stop (a crash),
    and no file is left under the final name."""
    folder = tmp_path / "batch"
    seen = []

    def lines():
        yield from wallet_lines([1000])
        seen.append(sorted(p.name for p in folder.iterdir()))
        raise RuntimeError("the process dies here")

    with pytest.raises(RuntimeError):
        MobileMoney(Settings()).write(header("mobile_money", [1000, 2000]), lines(), folder)
    assert seen == [["mobile-money.csv.part"]]
    assert list(folder.iterdir()) == []


def test_a_part_file_left_behind_fails_validation(tmp_path):
    provider = MobileMoney(Settings())
    folder = tmp_path / "batch"
    provider.write(header("mobile_money", [1000]), wallet_lines([1000]), folder)
    (folder / "mobile-money.csv.part").write_text("half", encoding="utf-8")
    with pytest.raises(InvalidInput, match="half written"):
        provider.validate(folder)


# --- result files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["reference", "status"], ["T1", "success"]], r"no column reason"),
        (
            [["reference", "status", "reason"], ["T1", "success", ""], ["T2", "lost", "x"]],
            r"line 3: status 'lost' is not one of success, failed, reversed, pending",
        ),
        (
            [
                ["reference", "status", "reason"],
                ["T1", "success", ""],
                ["T2", "failed", "A"],
                ["T1", "failed", "B"],
            ],
            r"line 4: a reference already answered above",
        ),  # fmt: skip
        ([["reference", "status", "reason"], ["T1", "success", ""], ["", "failed", "A"]], "line 3"),
        (
            [["reference", "status", "reason"], ["T1", "success", ""], ["T2", "failed"]],
            r"line 3: the line has 2 fields where the header has 3",
        ),
        ([["reference", "status", "reason"]], "no result lines"),
    ],
)
def test_bad_result_files_are_refused_by_line(tmp_path, rows, message):
    path = write_csv(tmp_path / "result.csv", rows)
    with pytest.raises(InvalidInput, match=message) as refused:
        MobileMoney(Settings()).read_report(path)
    assert "T1" not in str(refused.value) and "T2" not in str(refused.value)


def test_result_statuses_map_to_outcomes(tmp_path):
    path = write_csv(
        tmp_path / "result.csv",
        [["reference", "status", "reason"], ["T1", "success", ""], ["T2", "FAILED", "R01"],
         ["T3", "reversed", "R02"], ["T4", "pending", ""]],
    )  # fmt: skip
    assert results(MobileMoney(Settings()), path) == {
        "T1": (PAID, "success", None),
        "T2": (FAILED, "FAILED", "R01"),
        "T3": (RETURNED, "reversed", "R02"),
        "T4": (None, "pending", None),
    }
    _header, lines = MobileMoney(Settings()).read_report(path)
    assert [line.line for line in lines] == [2, 3, 4, 5]


# --- prepaid cards -----------------------------------------------------------------------------


def test_card_load_file_written_checked_and_answered(tmp_path):
    provider = PrepaidCard(Settings())
    amounts = [2500] * 30
    folder = tmp_path / "batch"
    assert provider.write(header("card", amounts, 2), card_lines(amounts), folder) == [
        "card-load.csv"
    ]
    rows = list(csv.reader((folder / "card-load.csv").open(encoding="utf-8", newline="")))
    assert rows[2] == ["reference", "card_masked", "card_number", "holder", "amount"]
    assert rows[4] == ["C000001", "************0001", "4000000000000001", LATIN[1], "25.00"]
    outcomes = results(provider, provider.answer(folder, tmp_path, fail_one_in=7, seed=3))
    # 30 lines: four whole runs of 7, each with one failure, and a last run of 2.
    assert Counter(o[0] for o in outcomes.values())[FAILED] in (4, 5)
    assert len(outcomes) == 30

    replace_in(folder / "card-load.csv", "4000000000000001", "4000000000000009")
    with pytest.raises(InvalidInput, match="line 5: the card number is wrong"):
        provider.validate(folder)


# --- cash pay-lists ----------------------------------------------------------------------------


def pdf_text(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils is not installed")
def test_cash_pay_list_by_point_with_arabic_names(tmp_path, monkeypatch):
    monkeypatch.setattr(CashAgent, "PDF_LINES", 3)
    provider = CashAgent(Settings(language="ar"))
    amounts = [75000 + i * 1000 for i in range(8)]
    folder = tmp_path / "batch"
    names = provider.write(header("cash_agent", amounts), cash_lines(amounts), folder)
    # Point "Post office ..." has 5 lines (2 sheets), the Arabic-named point 3 (1 sheet).
    assert names == [
        "paylist.csv", "paylist-0001-001.pdf", "paylist-0001-002.pdf", "paylist-0002-001.pdf"
    ]  # fmt: skip
    rows = list(csv.reader((folder / "paylist.csv").open(encoding="utf-8", newline="")))[3:]
    assert [row[1] for row in rows] == [f"K{i:06d}" for i in (0, 2, 4, 6, 7, 1, 3, 5)]

    first, second, third = (pdf_text(folder / name) for name in names[1:])
    for text, shown in ((first, (0, 2, 4)), (second, (6, 7)), (third, (1, 3, 5))):
        for i in shown:
            assert f"1000-{i:04d}-7" in text
            assert format_minor(amounts[i], 3) in text
    assert "1000-0006-7" not in first

    answered = provider.answer(folder, tmp_path / "result.csv", fail_one_in=4, seed=11)
    outcomes = results(provider, answered)
    assert Counter(o[0] for o in outcomes.values()) == {PAID: 6, RETURNED: 2}
    assert {o[1] for o in outcomes.values()} == {"collected", "not_collected"}


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils is not installed")
def test_small_points_share_a_pdf_each_on_its_own_page(tmp_path, monkeypatch):
    """A thousand points of a few lines each must not cost a thousand PDFs or pages:
    consecutive sheets share a file up to PDF_LINES lines, and a page, each headed by its
    point."""
    monkeypatch.setattr(CashAgent, "PDF_LINES", 6)
    provider = CashAgent(Settings())
    amounts = [75000 + i * 1000 for i in range(8)]  # points of 5 and 3 lines
    folder = tmp_path / "batch"
    names = provider.write(header("cash_agent", amounts), cash_lines(amounts), folder)
    assert names == ["paylist.csv", "paylist-0001-001.pdf", "paylist-0002-001.pdf"]
    monkeypatch.setattr(CashAgent, "PDF_LINES", 8)
    names = provider.write(header("cash_agent", amounts), cash_lines(amounts), folder)
    assert names == ["paylist.csv", "paylist-0001-001.pdf"]
    pages = [page for page in pdf_text(folder / names[1]).split("\f") if page.strip()]
    assert len(pages) == 1 and all(f"1000-{i:04d}-7" in pages[0] for i in range(8))
    assert pages[0].index("Post office Irbid Centre") < pages[0].index("1000-0000-7")
    assert pages[0].index("1000-0007-7") < pages[0].index("1000-0001-7")  # points in order


def test_cash_pay_list_refuses_missing_or_foreign_sheets(tmp_path, monkeypatch):
    monkeypatch.setattr(CashAgent, "PDF_LINES", 4)
    provider = CashAgent(Settings())
    amounts = [1000, 2000, 3000, 4000, 5000, 6000]  # points of 3 and 3 lines: two files
    folder = tmp_path / "batch"
    names = provider.write(header("cash_agent", amounts), cash_lines(amounts), folder)
    assert len(names) == 3
    shutil.copy(folder / names[1], folder / "paylist-0003-001.pdf")
    with pytest.raises(InvalidInput, match="0 pay-list PDFs missing, 1 not of this batch"):
        provider.validate(folder)
    (folder / "paylist-0003-001.pdf").unlink()
    (folder / names[2]).unlink()
    with pytest.raises(InvalidInput, match="1 pay-list PDFs missing"):
        provider.validate(folder)


def test_cash_results(tmp_path):
    path = write_csv(
        tmp_path / "agents.csv",
        [["reference", "status", "reason"], ["K1", "collected", ""],
         ["K2", "not_collected", "ABSENT"], ["K3", "refused", "WRONG_PERSON"]],
    )  # fmt: skip
    assert {k: v[0] for k, v in results(CashAgent(Settings()), path).items()} == {
        "K1": PAID, "K2": RETURNED, "K3": FAILED,
    }  # fmt: skip
    with pytest.raises(InvalidInput, match="line 2: status 'success'"):
        CashAgent(Settings()).read_report(
            write_csv(tmp_path / "x.csv", [["reference", "status", "reason"], ["K", "success", ""]])
        )
