"""Exactly once: a payments command killed (SIGKILL) at a point it reports
(SIJILL_PAYMENTS_PAUSE_AT) and run again leaves no duplicate instruction, no lost one and a
ledger that balances; during prepare, while a file is half written, and during reconciliation.
"""

import os
import signal
import subprocess
import sys
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import test_payments
from factories import make_user
from sijill.payments import ledger
from sijill.payments.batches import approve, release
from sijill.payments.files import batch_folder
from sijill.payments.models import PaymentBatch, PaymentInstruction, ProviderReport
from sijill.payments.providers import folder_digest, provider_named
from test_payments import CHECKER, CYCLE, PAY_ON, PAYER

# The payment cycle the main payments test uses (fixtures shared by name).
country = test_payments.country
cycle = test_payments.cycle

SIJILL = [sys.executable, "-m", "sijill"]


def _env(c, database_url) -> dict[str, str]:
    key = make_user(sessionmaker(c["engine"]), "payer-cli", "payment_officer", service=True)
    settings = c["settings"]
    return {
        **os.environ,
        "SIJILL_DATABASE_URL": database_url,
        "SIJILL_SERVICE_KEY": f"payer-cli:{key}",
        "SIJILL_KEY_FILE": str(c["keyring"].path),
        "SIJILL_WORK_DIR": str(settings.work_dir),
        "SIJILL_PAYER_IBAN": settings.payer_iban,
        "SIJILL_PAYER_BIC": settings.payer_bic,
    }


def _killed_at(point: str, args: list[str], env: dict[str, str]) -> str:
    """Run a command until it says it paused at `point`, then kill it (SIGKILL)."""
    process = subprocess.Popen(
        [*SIJILL, *args], env={**env, "SIJILL_PAYMENTS_PAUSE_AT": point},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    said = ""
    watchdog = threading.Timer(180, process.kill)  # a command that never pauses fails
    watchdog.start()
    try:
        for line in process.stderr:
            said += line
            if line.startswith(f"paused at {point}"):
                process.send_signal(signal.SIGKILL)
                process.wait()
                return said
    finally:
        watchdog.cancel()
    process.wait()
    pytest.fail(f"the command ended (exit {process.returncode}) without pausing:\n{said}")


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run([*SIJILL, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def _counts(engine) -> tuple[int, int]:
    with Session(engine) as session:
        instructions = session.scalar(select(func.count()).select_from(PaymentInstruction))
        distinct = session.scalar(
            select(func.count()).select_from(
                select(PaymentInstruction.program, PaymentInstruction.household_id)
                .distinct()
                .subquery()
            )
        )
    return instructions, distinct


def _balanced(engine) -> ledger.CheckReport:
    with Session(engine) as session:
        report = ledger.check(session)
    assert report.ok, report.problems
    return report


PREPARE = ["payments", "prepare", "--cycle", CYCLE, "--value-date", PAY_ON.isoformat()]


def test_killed_before_prepare_commits_nothing_is_left_and_a_rerun_pays_each_once(
    cycle,
    database_url,
):
    env = _env(cycle, database_url)
    _killed_at("prepare-before-commit", PREPARE, env)
    assert _counts(cycle["engine"]) == (0, 0)
    _run(PREPARE, env)
    instructions, distinct = _counts(cycle["engine"])
    assert instructions == distinct == len(cycle["payable"]) - len(cycle["held"])
    _balanced(cycle["engine"])


def test_killed_while_writing_a_file_the_rerun_writes_it_whole(cycle, database_url):
    env = _env(cycle, database_url)
    _killed_at("file-half-written", PREPARE, env)
    engine, settings = cycle["engine"], cycle["settings"]
    with Session(engine) as session:
        batches = session.scalars(select(PaymentBatch)).all()
    assert batches and any(b.file_hash is None for b in batches)
    half = next(b for b in batches if b.file_hash is None)
    assert not (batch_folder(settings, half.id) / "pain.001.xml").exists()
    expected = _counts(engine)
    _run(PREPARE, env)
    assert _counts(engine) == expected  # nothing instructed twice
    with Session(engine) as session:
        for batch in session.scalars(select(PaymentBatch)):
            assert batch.file_hash == folder_digest(batch_folder(settings, batch.id))
            provider_named(settings, batch.provider).validate(batch_folder(settings, batch.id))
    _balanced(engine)


def test_killed_during_reconciliation_the_rerun_applies_the_report_once(
    cycle,
    database_url,
    tmp_path,
):
    from sijill.payments.prepare import prepare

    engine, settings = cycle["engine"], cycle["settings"]
    report = prepare(engine, settings, cycle["keyring"], principal=PAYER, cycle=CYCLE,
                     value_date=PAY_ON)  # fmt: skip
    assert report.batches
    batch_id = test_payments.largest_bank_batch(engine)
    approve(engine, settings, principal=CHECKER, batch_id=batch_id)
    release(engine, settings, principal=PAYER, batch_id=batch_id)
    answer = provider_named(settings, "iso20022").answer(
        batch_folder(settings, batch_id), tmp_path / "pain002.xml", fail_one_in=2, seed=1
    )
    env = _env(cycle, database_url)
    args = ["payments", "reconcile", str(answer), "--provider", "iso20022"]
    _killed_at("reconcile-before-commit", args, env)
    with Session(engine) as session:
        assert not session.scalar(select(func.count()).select_from(ProviderReport))
        assert set(session.scalars(select(PaymentInstruction.status).where(
            PaymentInstruction.batch_id == batch_id))) == {"sent"}  # fmt: skip
    _run(args, env)
    _run(args, env)  # the same file again: nothing changes
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ProviderReport)) == 1
        statuses = set(session.scalars(select(PaymentInstruction.status).where(
            PaymentInstruction.batch_id == batch_id)))  # fmt: skip
    assert statuses <= {"paid", "failed"} and "paid" in statuses
    checked = _balanced(engine)
    assert checked.paid_once == sum(1 for s in _statuses(engine, batch_id) if s == "paid")


def _statuses(engine, batch_id: int) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(PaymentInstruction.status).where(
            PaymentInstruction.batch_id == batch_id)))  # fmt: skip
