"""Payment instruments: details checked by their libraries, encrypted at rest, a change held
for a second officer under the risk rule, four eyes, scope, and the bulk import."""

from contextlib import contextmanager
from datetime import date

import polars as pl
import pytest
from sqlalchemy import select

from factories import LOCALITY, OTHER_LOCALITY, household, make_areas
from sijill.core import clock
from sijill.core.db import transaction
from sijill.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from sijill.core.ids import format_id, new_id
from sijill.core.settings import Settings
from sijill.payments.instrument_details import BLIND_INDEX_FIELD, parse_details
from sijill.payments.instrument_import import import_instruments
from sijill.payments.instruments import (
    decide_instrument,
    list_instruments,
    read_details,
    record_instrument,
)
from sijill.payments.models import PaymentInstruction, PaymentInstrument
from sijill.programs.entitlement_models import Entitlement, EntitlementCycle
from sijill.programs.models import ProgramRun
from sijill.registry.schemas import HouseholdCreate
from sijill.registry.service import register_household
from sijill.security.audit.models import AuditRecord
from sijill.security.audit.service import append_now
from sijill.security.cli_common import audited_transaction
from sijill.security.keys.keyring import install_keyring
from sijill.security.principal import Grant, Principal
from sijill.targeting.models import FeatureSnapshot

IBAN = "TR330006100519786457841326"
OTHER_IBAN = "TR320010009999901234567890"
PHONE = "+905321234567"
CARD = "4111111111111111"
BANK = {"iban": "TR33 0006 1005 1978 6457 8413 26", "holder": "Ahmad Al-Khatib"}
OTHER_BANK = {"iban": OTHER_IBAN, "holder": "Fatima Al-Khatib", "bic": "DEUTDEFF"}


# --- details --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "raw", "field"),
    [
        ("bank", {"iban": "TR330006100519786457841327", "holder": "A"}, "iban"),  # check digits
        ("bank", {"iban": "TR3300061005", "holder": "A"}, "iban"),  # length
        ("bank", {"iban": IBAN, "holder": "A", "bic": "DEUTDE"}, "bic"),
        ("wallet", {"phone": "+90532123", "holder": "A"}, "phone"),
        ("wallet", {"phone": "0212 123 45 67", "holder": "A"}, "phone"),  # a landline
        ("card", {"card_number": "4111111111111112", "holder": "A"}, "card_number"),  # Luhn
        ("card", {"card_number": "41111", "holder": "A"}, "card_number"),
        ("cash", {"point": "post office 7", "holder": "A"}, "point"),
        ("bank", {"iban": IBAN}, "holder"),
        ("bank", {"iban": IBAN, "holder": "A", "phone": PHONE}, "fields"),
    ],
)
def test_bad_details_are_refused_in_one_line_without_the_value(kind, raw, field):
    with pytest.raises(InvalidInput) as refused:
        parse_details(kind, raw, "TR")
    message = refused.value.detail
    assert field in message and "\n" not in message
    for value in raw.values():
        if len(value) > 3:
            assert value not in message and value.replace(" ", "") not in message


def test_good_details_are_normalised_and_masked():
    bank = parse_details("bank", BANK, "TR")
    assert bank.values == {"holder": "Ahmad Al-Khatib", "iban": IBAN, "bic": None}
    assert bank.masked == "TR33 •••• 1326" and bank.account == IBAN
    wallet = parse_details("wallet", {"phone": "0532 123 45 67", "holder": "Ahmad"}, "TR")
    assert wallet.values["phone"] == PHONE and wallet.masked == "•••• 567"
    card = parse_details("card", {"card_number": "4111-1111-1111-1111", "holder": "Ahmad"})
    assert card.account == CARD and card.masked == "•••• 1111"
    cash = parse_details("cash", {"point": "po-0042", "holder": "Ahmad"})
    assert cash.masked == "PO-0042" and cash.account is None
    # Without a country to read it in, a local number is refused rather than guessed at.
    with pytest.raises(InvalidInput, match=r"\+ and the country code"):
        parse_details("wallet", {"phone": "0532 123 45 67", "holder": "Ahmad"}, None)


# --- the registry ---------------------------------------------------------------------------


def officer(name: str, area_id: int | None = None, role: str = "payment_officer") -> Principal:
    return Principal(name, (Grant(role, area_id),))


@pytest.fixture
def world(settings, sessions):
    areas = make_areas(sessions)
    keyring = install_keyring(settings)
    ids = {}
    with transaction(sessions) as session:
        for name, area in (("inside", LOCALITY), ("second", LOCALITY), ("outside", OTHER_LOCALITY)):
            created = register_household(
                session,
                Principal.system("test"),
                HouseholdCreate(**household(area_code=area)),
                settings=settings,
            )
            ids[name] = created.household_id
            ids[f"{name}_members"] = [m.person_id for m in created.members]
    return sessions, keyring, areas, ids


@contextmanager
def audited(sessions, who: Principal):
    """The write with its audit entries, as a command runs it; a refusal's entries alone."""
    try:
        with audited_transaction(sessions, who) as session:
            yield session
    finally:
        left = who.take_audit()
        if left:
            append_now(sessions, left)


def record(world, settings, who: Principal, key: str = "inside", kind="bank", details=None):
    sessions, keyring, _, ids = world
    with audited(sessions, who) as session:
        return record_instrument(
            session, who, keyring, settings,
            household=ids[key], kind=kind, details=details or BANK,
        )  # fmt: skip


def decide(world, who: Principal, instrument_id: int, approve: bool = True):
    with audited(world[0], who) as session:
        return decide_instrument(session, who, instrument_id, approve)


def statuses(world, key: str = "inside") -> dict[int, str]:
    sessions, _, _, ids = world
    with sessions() as session:
        rows = session.execute(
            select(PaymentInstrument.id, PaymentInstrument.status).where(
                PaymentInstrument.household_id == int(ids[key])
            )
        )
        return {a: b for a, b in rows}


def test_an_instrument_is_encrypted_at_rest_and_the_first_is_active(world, settings):
    sessions, keyring, _, ids = world
    first = record(world, settings, officer("amal"))
    assert first.status == "active" and first.masked == "TR33 •••• 1326"
    with sessions() as session:
        row = session.get(PaymentInstrument, first.id)
        stored = (row.details, row.fingerprint, row.masked)
    assert IBAN not in stored[0] and "Ahmad" not in stored[0]
    assert read_details(keyring, [stored[0]]) == [
        {"holder": "Ahmad Al-Khatib", "iban": IBAN, "bic": None}
    ]
    assert stored[1] == keyring.blind_index(IBAN, field=BLIND_INDEX_FIELD)


def approved_entitlement(world, key: str, *, instructed: bool = False) -> None:
    """An approved, payable entitlement of the household (and, if `instructed`, its live
    payment instruction)."""
    sessions, _, areas, ids = world
    now = clock.utcnow()
    with transaction(sessions) as session:
        snapshot = FeatureSnapshot(
            as_of=date(2026, 11, 1), catalogue_version="v", area_id=None, created_by="t",
            created_at=now, households=1, households_without_consent=0, file_name="f",
            sha256="0" * 64,
        )  # fmt: skip
        session.add(snapshot)
        session.flush()
        run = ProgramRun(
            program="child-grant", version=1, digest="d", kind="eligibility",
            as_of=date(2026, 11, 1), snapshot_id=snapshot.id, score_runs={}, parameters={},
            clauses=[], run_by="t", started_at=now,
        )  # fmt: skip
        session.add(run)
        session.flush()
        cycle = EntitlementCycle(
            program="child-grant", cycle="2026-11", area_id=None, first_day=date(2026, 11, 1),
            last_day=date(2026, 11, 30), status="approved", run_id=run.id, version=1,
            digest="d", generated_by="a", generated_at=now, approved_by="b", approved_at=now,
            households=1, total_minor=5000, currency="TRY", summary={},
        )  # fmt: skip
        session.add(cycle)
        session.flush()
        session.add(
            Entitlement(
                program="child-grant",
                cycle="2026-11",
                household_id=int(ids[key]),
                batch_id=cycle.id,
                formula_minor=5000,
                days=30,
                amount_minor=5000,
                status="due",
            )  # fmt: skip
        )
        if instructed:
            session.add(
                PaymentInstruction(
                    id=1,
                    batch_id=1,
                    program="child-grant",
                    cycle="2026-11",
                    household_id=int(ids[key]),
                    attempt=1,
                    instrument_id=1,
                    transfer_ref="T1",
                    amount_minor=5000,
                    currency="TRY",
                    status="sent",
                )  # fmt: skip
            )


@pytest.mark.parametrize(
    ("rule", "due", "held"),
    [
        ("never", "approved", False),
        ("always", None, True),
        ("before_payment", None, False),
        ("before_payment", "approved", True),
        ("before_payment", "instructed", False),
    ],
)
def test_a_change_waits_for_a_second_officer_only_under_the_risk_rule(
    world, database_url, rule, due, held
):
    settings = Settings(database_url=database_url, instrument_change_review=rule)
    first = record(world, settings, officer("amal"))
    if due:
        approved_entitlement(world, "inside", instructed=due == "instructed")
    change = record(world, settings, officer("amal"), details=OTHER_BANK)
    if held:
        assert change.status == "pending" and change.reason
        assert statuses(world) == {first.id: "active", change.id: "pending"}
        if due:
            assert "child-grant" in change.reason and "2026-11" in change.reason
    else:
        assert change.status == "active" and change.reason is None
        assert statuses(world) == {first.id: "replaced", change.id: "active"}


def test_four_eyes_on_a_held_change(world, database_url):
    settings = Settings(database_url=database_url, instrument_change_review="always")
    first = record(world, settings, officer("amal"))
    change = record(world, settings, officer("amal"), details=OTHER_BANK)
    with pytest.raises(Forbidden, match="another officer must approve"):
        decide(world, officer("amal"), change.id)
    # A second change while one waits is refused: the officer decides the first.
    with pytest.raises(Conflict, match="waiting for a second officer"):
        record(world, settings, officer("amal"), kind="cash",
               details={"point": "PO-1", "holder": "A"})  # fmt: skip
    # A registrar records instruments but approves none.
    with pytest.raises(Forbidden):
        decide(world, officer("rania", role="registrar"), change.id)
    approved = decide(world, officer("basma"), change.id)
    assert approved.status == "active" and approved.decided_by == "basma"
    assert statuses(world) == {first.id: "replaced", change.id: "active"}
    with pytest.raises(Conflict, match="only a pending change"):
        decide(world, officer("basma"), change.id, approve=False)
    third = record(world, settings, officer("amal"), kind="card",
                   details={"card_number": CARD, "holder": "Ahmad"})  # fmt: skip
    rejected = decide(world, officer("basma"), third.id, approve=False)
    assert rejected.status == "rejected"
    assert statuses(world) == {first.id: "replaced", change.id: "active", third.id: "rejected"}
    sessions, _, _, ids = world
    with sessions() as session:
        shown = list_instruments(session, officer("basma"), ids["inside"])
        audits = session.execute(
            select(AuditRecord.action, AuditRecord.outcome, AuditRecord.record_id).where(
                AuditRecord.action.like("payments.instrument.%")
            )
        ).all()
    assert [v.status for v in shown] == ["rejected", "active", "replaced"]
    assert ("payments.instrument.approve", "denied", str(change.id)) in audits
    assert ("payments.instrument.approve", "ok", str(change.id)) in audits
    assert ("payments.instrument.reject", "ok", str(third.id)) in audits
    assert ("payments.instrument.record", "ok", str(third.id)) in audits
    everything = repr(audits)
    assert all(secret not in everything for secret in (IBAN, OTHER_IBAN, CARD, "Ahmad"))


def test_a_household_outside_the_officers_areas_answers_as_a_missing_one(world, settings):
    sessions, keyring, areas, ids = world
    scoped = officer("salma", areas["SJ0101"])
    missing = format_id(new_id("household"))
    answers = []
    for target in (ids["outside"], missing):
        with pytest.raises(NotFound) as refused, transaction(sessions) as session:
            record_instrument(session, scoped, keyring, settings, household=target,
                              kind="bank", details=BANK)  # fmt: skip
        answers.append(refused.value.detail.replace(target, "<id>"))
        with pytest.raises(NotFound) as refused, sessions() as session:
            list_instruments(session, scoped, target)
        answers.append(refused.value.detail.replace(target, "<id>"))
    assert answers[:2] == answers[2:]
    assert record(world, settings, scoped).status == "active"
    # Nor can a change outside the officer's areas be decided from inside them.
    strict = Settings(database_url=settings.database_url, instrument_change_review="always")
    record(world, strict, officer("amal"), key="outside")
    held = record(world, strict, officer("amal"), key="outside", details=OTHER_BANK)
    with pytest.raises(NotFound, match=f"no payment instrument {held.id}"):
        decide(world, scoped, held.id)


def test_a_recipient_must_be_a_current_member(world, settings):
    sessions, keyring, _, ids = world

    def add(recipient: str):
        with transaction(sessions) as session:
            return record_instrument(
                session, officer("amal"), keyring, settings,
                household=ids["inside"], kind="bank", details=BANK, recipient=recipient,
            )  # fmt: skip

    with pytest.raises(InvalidInput, match="not a current member"):
        add(ids["second_members"][0])
    shown = add(ids["inside_members"][1])
    assert shown.person_id == ids["inside_members"][1]


# --- bulk import ----------------------------------------------------------------------------


def write_csv(path, rows: list[dict]) -> None:
    columns = ["household_id", "kind", "holder", "iban", "bic", "phone", "operator", "point",
               "card_number", "person_id"]  # fmt: skip
    pl.DataFrame([{c: row.get(c) for c in columns} for row in rows], schema=dict.fromkeys(
        columns, pl.String)).write_csv(path)  # fmt: skip


def test_bulk_import_rejects_by_line_is_idempotent_and_replaces_under_the_rule(
    world, database_url, engine, tmp_path
):
    sessions, keyring, areas, ids = world
    settings = Settings(database_url=database_url)
    scoped = officer("salma", areas["SJ0101"])
    lines = [
        {"household_id": ids["inside"], "kind": "bank", **BANK},  # line 2
        {
            "household_id": ids["second"],
            "kind": "wallet",
            "phone": "0532 123 45 67",
            "holder": "Fatima",
            "person_id": ids["second_members"][1],
        },  # fmt: skip
        {"household_id": ids["outside"], "kind": "cash", "point": "PO-1", "holder": "A"},
        {
            "household_id": format_id(new_id("household")),
            "kind": "cash",
            "point": "PO-1",
            "holder": "A",
        },  # fmt: skip
        {"household_id": ids["inside"], "kind": "cash", "point": "PO-1", "holder": "A"},
        {"household_id": "12345", "kind": "cash", "point": "PO-1", "holder": "A"},
        {
            "household_id": ids["second"],
            "kind": "card",
            "card_number": "4111111111111112",
            "holder": "A",
        },  # fmt: skip
        {
            "household_id": ids["second"],
            "kind": "bank",
            "iban": "TR330006100519786457841327",
            "holder": "A",
        },  # fmt: skip
        {"household_id": ids["second"], "kind": "wallet", "phone": "+90532", "holder": "A"},
        {"household_id": ids["second"], "kind": "boat", "holder": "A"},
    ]
    path = tmp_path / "instruments.csv"
    write_csv(path, lines)
    report = import_instruments(engine, settings, principal=scoped,
                                keyring=keyring, path=path)  # fmt: skip
    assert (report.added, report.pending, report.unchanged) == (2, 0, 0)
    rejects = {row["row"]: row["reason"] for row in report.rejects.iter_rows(named=True)}
    assert rejects == {
        4: "unknown_household", 5: "unknown_household", 6: "repeated",
        7: "bad_household_id", 8: "bad_card_number", 9: "bad_iban", 10: "bad_phone",
        11: "bad_kind",
    }  # fmt: skip
    text = report.rejects.write_csv()
    assert all(secret not in text for secret in ("TR33000610051978645784132", "Fatima", "PO-1"))
    # The same rows as one recorded by hand.
    with sessions() as session:
        rows = {
            row.household_id: row
            for row in session.scalars(select(PaymentInstrument).order_by(PaymentInstrument.id))
        }
    wallet = rows[int(ids["second"])]
    single = parse_details("wallet", {"phone": "0532 123 45 67", "holder": "Fatima"}, "TR")
    assert read_details(keyring, [wallet.details]) == [single.values]
    assert (wallet.masked, wallet.status, wallet.person_id) == (
        single.masked, "active", int(ids["second_members"][1]),
    )  # fmt: skip
    assert wallet.fingerprint == keyring.blind_index(PHONE, field=BLIND_INDEX_FIELD)

    again = import_instruments(engine, settings, principal=scoped,
                               keyring=keyring, path=path)  # fmt: skip
    assert (again.added, again.pending, again.unchanged) == (0, 0, 2)
    assert len(statuses(world)) == 1

    # Changes: refused without --replace; with it, held where a payment is on its way.
    approved_entitlement(world, "second")
    write_csv(path, [{"household_id": ids["inside"], "kind": "bank", **OTHER_BANK},
                     {"household_id": ids["second"], "kind": "bank", **OTHER_BANK}])  # fmt: skip
    refused = import_instruments(engine, settings, principal=scoped,
                                 keyring=keyring, path=path)  # fmt: skip
    assert refused.added == 0 and set(refused.rejects["reason"]) == {"has_instrument"}
    changed = import_instruments(engine, settings, principal=scoped,
                                 keyring=keyring, path=path, replace=True)  # fmt: skip
    assert (changed.added, changed.pending, changed.replaced) == (1, 1, 1)
    assert sorted(statuses(world, "inside").values()) == ["active", "replaced"]
    assert sorted(statuses(world, "second").values()) == ["active", "pending"]
    with sessions() as session:
        audits = session.scalars(
            select(AuditRecord.record_id).where(AuditRecord.action == "payments.instrument.import")
        ).all()
    assert audits == ["a2 p0 r0 u0 x8", "a0 p0 r0 u2 x8", "a0 p0 r0 u0 x2", "a1 p1 r1 u0 x0"]


# --- synthetic instruments ------------------------------------------------------------------


def test_synth_writes_valid_instruments_some_shared_and_the_same_for_a_seed(tmp_path):
    from sijill.synth.service import generate

    generate(4000, 11, tmp_path / "a")
    generate(4000, 11, tmp_path / "b")
    first = (tmp_path / "a" / "instruments.csv").read_bytes()
    assert first == (tmp_path / "b" / "instruments.csv").read_bytes()
    frame = pl.read_csv(tmp_path / "a" / "instruments.csv", infer_schema=False)
    households = pl.read_csv(tmp_path / "a" / "households.csv", infer_schema=False)
    assert 0.95 < frame.height / households.height < 0.995  # about 2% have none
    kinds = dict(frame["kind"].value_counts().iter_rows())
    assert kinds["bank"] > kinds["cash"] > kinds["card"] > 0 and kinds["wallet"] > kinds["cash"]
    for row in frame.iter_rows(named=True):
        skip = ("household_key", "kind")
        present = {k: v for k, v in row.items() if v is not None and k not in skip}
        parse_details(row["kind"], present, "TR")  # raises on any invalid detail
    wallets = frame.filter(pl.col("kind") == "wallet")
    assert 0 < wallets.filter(pl.col("phone").is_duplicated()).height < wallets.height / 50
