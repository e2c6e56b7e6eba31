"""Every committed batch of an import carries its own audit record, committed with it, and an
import stopped part way is recorded as interrupted, not failed: stopped at a reported point
(SIJILL_IMPORT_PAUSE_AFTER_BATCH), by Ctrl-C or a kill, on the batch path and on the initial
load."""

import re
import signal

import pytest
from sqlalchemy import func, select

from sijill.core.db import make_engine, session_factory
from sijill.jobs.models import Job
from sijill.registry.models import Household
from sijill.security.audit.models import AuditRecord
from sijill.security.audit.service import verify
from test_cli import _importer_env, _start_paused_import, country  # noqa: F401  (a fixture)

BATCH = "household.import.batch"


def _records(database_url) -> tuple[list[AuditRecord], int, list[Job]]:
    engine = make_engine(database_url)
    with session_factory(engine)() as session:
        records = list(session.scalars(select(AuditRecord).order_by(AuditRecord.seq)))
        households = session.scalar(select(func.count()).select_from(Household))
        jobs = list(session.scalars(select(Job)))
    assert verify(engine).ok  # every batch record is in the chain, which is intact
    engine.dispose()
    return records, households, jobs


def _stop(country, database_url, sessions, stop, **extra):  # noqa: F811
    env = _importer_env(sessions, database_url, **extra)
    process, said = _start_paused_import(country, env)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    assert "Traceback" not in said + stderr
    return _records(database_url)


def _check_batches(records: list[AuditRecord], households: int, job: Job) -> list[str]:
    batches = [r for r in records if r.action == BATCH]
    pattern = re.compile(rf"^job {job.id} b(\d+) r(\d+)-(\d+) \+(\d+)h \+(\d+)p( \+\d+f)?$")
    found = [pattern.match(r.record_id) for r in batches]
    assert all(found), [r.record_id for r in batches]
    assert [int(m.group(1)) for m in found] == list(range(1, len(batches) + 1))
    # The records' counts are what the registry holds: no committed batch lacks its record.
    assert sum(int(m.group(4)) for m in found) == households
    assert all((r.actor, r.outcome) == ("importer", "ok") for r in batches)
    return [r.record_id for r in batches]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_each_committed_batch_has_its_record_and_an_interruption_is_not_a_failure(
    stop,
    country,  # noqa: F811
    database_url,
    sessions,
):
    records, households, jobs = _stop(
        country, database_url, sessions, stop, SIJILL_IMPORT_INITIAL_LOAD="false"
    )
    (job,) = jobs
    batches = _check_batches(records, households, job)
    assert households > 0
    if stop == signal.SIGKILL:
        # Killed while paused after batch 1, with batch 2 in hand: one batch, one record.
        assert len(batches) == 1
        return
    assert job.state == "interrupted"
    assert len(batches) == job.outcome["batches_committed"] >= 1
    closing = [(r.action, r.outcome) for r in records if r.record_type in ("import", "job")]
    assert ("household.import", "interrupted") in closing
    assert ("job.interrupted", "interrupted") in closing
    assert not [r for r in records if r.outcome == "failed"]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_an_initial_load_commits_its_batch_records_with_its_rows_or_neither(
    stop,
    country,  # noqa: F811
    database_url,
    sessions,
):
    if not database_url.startswith("postgresql"):
        pytest.skip("the initial load is PostgreSQL's bulk path")
    records, households, jobs = _stop(country, database_url, sessions, stop)
    (job,) = jobs
    batches = _check_batches(records, households, job)
    if stop == signal.SIGKILL:
        assert (households, batches) == (0, [])
        return
    assert job.state == "interrupted" and households > 0
    assert len(batches) == job.outcome["batches_committed"] >= 1
