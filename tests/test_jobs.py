"""Long work as jobs: an upload answers 202 with the job's URL, the import runs in the
background, its status, outcome and rejects are there for whoever started it (and national
administrators, nobody else), it can be cancelled at a checkpoint, and a job its process left
behind is said to be interrupted, never silently lost. The command line records its runs as
jobs too.

Nothing here waits a fixed time for something to happen: tests that need the work at a known
point make it wait on an event there, and the others poll the job until it has ended, with a
generous deadline.
"""

import csv
import io
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from factories import LOCALITY, OTHER_LOCALITY, auth_headers, make_areas, make_user, national_id
from sijill.api import create_app
from sijill.core.clock import utcnow
from sijill.core.db import transaction
from sijill.core.ids import format_id, new_id
from sijill.core.settings import Settings
from sijill.jobs import kinds, service
from sijill.jobs.models import ENDED, Job
from sijill.jobs.runner import NOT_STARTED, SERVER_STOPPED
from sijill.registry.bulk.service import import_path
from sijill.registry.models import Household, Person
from sijill.security.audit.models import AuditRecord
from sijill.security.principal import Principal
from sijill.security.roles import Permission

PROBLEM = "application/problem+json"
HEADER = [
    "household_key",
    "area_code",
    "address",
    "registration_date",
    "consent_given",
    "consent_purposes",
    "person_key",
    "relationship",
    "given_name_ar",
    "given_name_lat",
    "family_name_lat",
    "sex",
    "birth_date",
    "national_id_type",
    "national_id",
]


def flat_list(households: int, area: str = LOCALITY, bad_sex_in: int | None = None) -> bytes:
    """An agency's flat list (one row per person): `households` households of a head and a
    child; the head of household number `bad_sex_in` has a sex the registry does not know."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for i in range(households):
        key = f"H{i}"
        common = [key, area, f"Street {i}", "2025-01-10", "true", "eligibility_assessment"]
        sex = "X" if i == bad_sex_in else "M"
        writer.writerow(
            [*common, f"{key}a", "head", "أحمد", "Ahmed", "Saleh", sex, "1980-05-03"]
            + ["national_id", national_id()]
        )
        writer.writerow(
            [*common, f"{key}b", "child", "يوسف", "Yusuf", "Saleh", "M", "2015", "", ""]
        )
    return out.getvalue().encode()


@pytest.fixture
def api(database_url, sessions, tmp_path):
    """The app with small import batches, a work folder of its own, an administrator, a
    registrar of district SJ0101 and one of district SJ0201."""
    make_areas(sessions)
    settings = Settings(
        database_url=database_url, import_batch_size=100, work_dir=tmp_path / "work"
    )
    app = create_app(settings)
    with TestClient(app) as client:
        client.settings = settings
        client.admin = auth_headers(sessions, settings)
        client.registrar = auth_headers(sessions, settings, "registrar", "SJ0101")
        client.stranger = auth_headers(sessions, settings, "registrar", "SJ0201")
        yield client


def upload(client, content: bytes, name: str = "list.csv", headers=None, **data):
    files = {"file": (name, content, "text/csv")}
    if "mapping" in data:
        files["mapping"] = ("mapping.yaml", data.pop("mapping"), "application/yaml")
    return client.post("/imports", files=files, data=data, headers=headers or client.registrar)


def wait_for_end(client, url: str, headers=None, deadline: float = 120.0) -> dict:
    """Poll the job until it has ended (a generous deadline, for a loaded machine)."""
    give_up = time.monotonic() + deadline
    while True:
        response = client.get(url, headers=headers or client.registrar)
        assert response.status_code == 200, response.text
        job = response.json()
        if job["state"] in ENDED:
            return job
        assert time.monotonic() < give_up, f"the job did not end: {job}"
        time.sleep(0.05)


def left_in(work_dir: Path) -> list[str]:
    """What the work folder holds: files, and folders left empty."""
    if not work_dir.exists():
        return []
    return sorted(p.name for p in work_dir.rglob("*") if p.is_file() or not any(p.iterdir()))


def count(sessions, model) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def audited(sessions, job_id: str) -> list[tuple[str, str, str]]:
    with sessions() as session:
        rows = session.execute(
            select(AuditRecord.actor, AuditRecord.action, AuditRecord.outcome)
            .where(AuditRecord.record_type == "job", AuditRecord.record_id == job_id)
            .order_by(AuditRecord.seq)
        ).all()
    return [tuple(row) for row in rows]


def test_an_upload_is_imported_as_a_job(api, sessions):
    response = upload(api, flat_list(5, bad_sex_in=2), source="moh-2026")
    assert response.status_code == 202, response.text
    job = response.json()
    location = response.headers["location"]
    assert location.endswith(f"/jobs/{job['job_id']}")
    assert len(job["job_id"]) == 11
    assert job["kind"] == "import" and job["started_by"] == "registrar-sj0101"
    assert job["state"] in ("queued", "running", "succeeded")

    ended = wait_for_end(api, location)
    assert ended["state"] == "succeeded", ended
    assert ended["error"] is None and ended["finished_at"] is not None
    outcome = ended["outcome"]
    assert outcome["source"] == "moh-2026"
    assert (outcome["households_added"], outcome["persons_added"]) == (4, 8)
    # The head's row (its sex, and so its household: no head left) and its child's row: two
    # rows of the list, though the rejects file has a line for each of three reasons.
    assert outcome["rejected_rows"] == 2
    assert count(sessions, Household) == 4
    assert ended["done"] == 5

    assert ended["rejects"] == f"/jobs/{job['job_id']}/rejects"
    rejects = api.get(ended["rejects"], headers=api.registrar)
    assert rejects.status_code == 200, rejects.text
    assert rejects.headers["content-type"].startswith("text/csv")
    assert "attachment" in rejects.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(rejects.content.decode("utf-8-sig"))))
    assert len(rows) == 3
    assert {row["file"] for row in rows} == {"list.csv"}
    assert any(row["field"] == "sex" and row["value"] == "X" for row in rows), rows

    # The uploaded file is gone once the job has ended; the rejects stay for download.
    assert left_in(api.settings.work_dir) == ["rejects.csv"]
    assert audited(sessions, job["job_id"]) == [
        ("registrar-sj0101", "job.start", "ok"),
        ("registrar-sj0101", "job.succeeded", "ok"),
        ("registrar-sj0101", "job.rejects", "ok"),
    ]


def test_the_job_audit_trail(api, sessions):
    response = upload(api, flat_list(2))
    ended = wait_for_end(api, response.headers["location"])
    assert ended["state"] == "succeeded"
    assert [action for _, action, _ in audited(sessions, ended["job_id"])] == [
        "job.start",
        "job.succeeded",
    ]
    with sessions() as session:
        run = session.execute(
            select(AuditRecord.actor, AuditRecord.outcome).where(
                AuditRecord.action == "household.import"
            )
        ).all()
    assert [tuple(r) for r in run] == [("registrar-sj0101", "ok")]


def test_only_the_starter_and_national_administrators_see_a_job(api):
    response = upload(api, flat_list(2))
    job_id = response.json()["job_id"]
    ended = wait_for_end(api, f"/jobs/{job_id}")
    assert ended["state"] == "succeeded"
    missing = format_id(new_id("job"))
    for suffix, method in (("", "GET"), ("/rejects", "GET"), ("/cancel", "POST")):
        theirs = api.request(method, f"/jobs/{job_id}{suffix}", headers=api.stranger)
        nobodys = api.request(method, f"/jobs/{missing}{suffix}", headers=api.stranger)
        assert theirs.status_code == 404, theirs.text
        assert theirs.headers["content-type"] == PROBLEM
        assert theirs.text.replace(job_id, "<id>") == nobodys.text.replace(missing, "<id>")
    assert api.get(f"/jobs/{job_id}", headers=api.admin).status_code == 200
    # A district's administrator is not a national one.
    district_admin = auth_headers(api.app.state.sessions, api.settings, "administrator", "SJ01")
    assert api.get(f"/jobs/{job_id}", headers=district_admin).status_code == 404
    # A mistyped ID is said to be one.
    typo = job_id[:-1] + str((int(job_id[-1]) + 1) % 10)
    body = api.get(f"/jobs/{typo}", headers=api.registrar).json()
    assert body["status"] == 422 and body["errors"][0]["field"] == "job_id"


def test_cancel_stops_an_import_after_the_batch_in_hand(api, sessions):
    """The work is held right after its first batch (a hook in the test's own kind, wrapping
    the real import), cancelled there, then let go: it stops at its next checkpoint with the
    first batch committed."""
    first_batch, release = threading.Event(), threading.Event()
    read_first = []
    real = kinds.get("import")

    def held_after_first_batch(ctx, params):
        report = ctx.progress

        def progress(done, total=None):
            report(done, total)
            if not first_batch.is_set():
                read_first.append(done)
                first_batch.set()
                assert release.wait(120)

        ctx.progress = progress
        return real.work(ctx, params)

    kinds.register(replace(real, work=held_after_first_batch))
    try:
        response = upload(api, flat_list(600))
        assert response.status_code == 202, response.text
        location = response.headers["location"]
        assert first_batch.wait(120), "the import never reached its first batch"
        cancelling = api.post(f"{location}/cancel", headers=api.registrar)
        assert cancelling.status_code == 202, cancelling.text
        assert cancelling.json()["cancel_requested"] is True
        assert cancelling.json()["state"] == "running"
        release.set()
        ended = wait_for_end(api, location)
    finally:
        release.set()
        kinds.register(real)
    assert ended["state"] == "cancelled", ended
    # A flat list's batch is 5 x 100 rows: 249 whole households of two (the 250th may go on).
    assert read_first == [249]
    assert ended["outcome"]["households_added"] == 249
    assert ended["outcome"]["batches_committed"] == 1
    assert count(sessions, Household) == 249
    # Over: cancelling again is a conflict.
    again = api.post(f"{location}/cancel", headers=api.registrar)
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    actions = [action for _, action, _ in audited(sessions, ended["job_id"])]
    assert actions == ["job.start", "job.cancel", "job.cancelled", "job.cancel"]


@pytest.fixture
def blocking_kind():
    """A kind of job that waits until the test lets it go, checking for cancellation."""
    started, release = threading.Event(), threading.Event()

    def work(ctx, params):
        started.set()
        while not release.wait(0.01):
            if ctx.cancelled():
                ctx.stopped_early()
                return None
        ctx.outcome = {"waited": 1}
        return None

    kinds.register(kinds.JobKind("test-blocking", work, Permission.HOUSEHOLD_IMPORT))
    yield started, release
    release.set()
    kinds.unregister("test-blocking")


def test_a_queued_job_cancelled_before_it_starts_never_runs(api, sessions, blocking_kind):
    started, release = blocking_kind
    runner = api.app.state.jobs
    principal = Principal.system("test")
    # Every worker busy: the next job waits in the queue.
    busy = [runner.start("test-blocking", None, principal) for _ in range(runner.workers)]
    assert started.wait(60)
    queued = runner.start("test-blocking", None, principal)
    cancelled = api.post(f"/jobs/{queued.id}/cancel", headers=api.admin)
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["started_at"] is None
    release.set()
    for job in busy:
        assert wait_for_end(api, f"/jobs/{job.id}", api.admin)["state"] == "succeeded"
    ended = wait_for_end(api, f"/jobs/{queued.id}", api.admin)
    assert ended["state"] == "cancelled" and ended["outcome"] is None
    assert [action for _, action, _ in audited(sessions, str(queued.id))] == [
        "job.start",
        "job.cancel",
        "job.cancelled",
    ]


def test_stopping_the_server_interrupts_its_jobs(database_url, sessions, blocking_kind, tmp_path):
    started, _ = blocking_kind
    make_areas(sessions)
    settings = Settings(database_url=database_url, work_dir=tmp_path / "work", job_workers=1)
    admin = auth_headers(sessions, settings)
    app = create_app(settings)
    with TestClient(app):
        runner = app.state.jobs
        running = runner.start("test-blocking", None, Principal.system("test"))
        assert started.wait(60)
        waiting = runner.start("test-blocking", None, Principal.system("test"))
    # The app has stopped: the running job at its next checkpoint, the queued one at once.
    with TestClient(create_app(settings), headers=admin) as client:
        first = client.get(f"/jobs/{running.id}").json()
        second = client.get(f"/jobs/{waiting.id}").json()
    assert (first["state"], first["error"]) == ("interrupted", SERVER_STOPPED)
    assert (second["state"], second["error"]) == ("interrupted", NOT_STARTED)


def _left_job(sessions, runner: str, heartbeat_age: timedelta, state="running") -> int:
    now = utcnow()
    with transaction(sessions) as session:
        job = service.create(session, new_id("job"), "import", "registrar-sj0101", state, now)
        job.runner, job.heartbeat_at = runner, now - heartbeat_age
    return job.id


def test_a_restart_marks_the_jobs_left_behind_interrupted(database_url, sessions, tmp_path):
    make_areas(sessions)
    settings = Settings(database_url=database_url, work_dir=tmp_path / "work")
    # Jobs as a previous process of this machine left them (this process's ID: a container
    # restarted gets the same), as a process that no longer exists left them, as another
    # machine's process still at work has them, and as one silent for too long has them.
    fresh, old = timedelta(seconds=1), service.STALE_AFTER + timedelta(seconds=1)
    previous = _left_job(sessions, service.this_process(), fresh)
    host = service.this_process().rsplit(":", 1)[0]
    gone = _left_job(sessions, f"{host}:{2**22 + 1}", fresh, "queued")  # above Linux's pid_max
    elsewhere = _left_job(sessions, "another-host:42", fresh)
    silent = _left_job(sessions, "another-host:43", old)
    admin = auth_headers(sessions, settings)
    with TestClient(create_app(settings), headers=admin) as client:
        states = {
            name: client.get(f"/jobs/{job_id}").json()
            for name, job_id in [
                ("previous", previous),
                ("gone", gone),
                ("elsewhere", elsewhere),
                ("silent", silent),
            ]
        }
    assert {name: job["state"] for name, job in states.items()} == {
        "previous": "interrupted",
        "gone": "interrupted",
        "elsewhere": "running",
        "silent": "interrupted",
    }
    assert states["previous"]["error"] == service.LEFT_BEHIND
    with sessions() as session:
        records = session.execute(
            select(AuditRecord.actor, AuditRecord.action).where(AuditRecord.record_type == "job")
        ).all()
    assert sorted(tuple(r) for r in records) == [("system:jobs", "job.interrupted")] * 3


def test_the_upload_has_its_own_size_limit(database_url, sessions, tmp_path):
    make_areas(sessions)
    settings = Settings(
        database_url=database_url,
        work_dir=tmp_path / "work",
        max_request_bytes=1024,
        max_upload_bytes=4096,
    )
    headers = auth_headers(sessions, settings, "registrar", "SJ0101")
    with TestClient(create_app(settings), headers=headers) as client:
        content = flat_list(4)
        assert 1024 < len(content) < 3500
        accepted = upload(client, content, headers=headers)
        assert accepted.status_code == 202, accepted.text
        assert wait_for_end(client, accepted.headers["location"], headers)["state"] == "succeeded"
        too_large = upload(client, content + b"x" * 4096, headers=headers)
        assert too_large.status_code == 413, too_large.text
        assert too_large.headers["content-type"] == PROBLEM
        assert "4,096 bytes" in too_large.json()["detail"]
        # Every other route keeps the general limit.
        other = client.post("/households", content=b"{" + b" " * 2000 + b"}")
        assert other.status_code == 413
    assert left_in(settings.work_dir) == []


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("list.csv", b"name,age\nAhmad,40\n", "no column for household_key, area_code"),
        ("list.csv", "\ufeffhousehold_key\n".encode("utf-16"), "not UTF-8 text"),
        ("list.csv", b"PK\x03\x04 an XLSX file named .csv", "not CSV text"),
        ("list.parquet", b"PAR1 this is no parquet file", "cannot be read as Parquet"),
    ],
    ids=["no-key-columns", "not-utf8", "zip-as-csv", "not-parquet"],
)
def test_a_file_that_cannot_be_read_fails_its_job_and_writes_nothing(
    api, sessions, name, content, message
):
    response = upload(api, content, name=name)
    assert response.status_code == 202, response.text
    ended = wait_for_end(api, response.headers["location"])
    assert ended["state"] == "failed", ended
    assert message in ended["error"]
    assert ended["rejects"] is None and ended["outcome"] is None
    assert (count(sessions, Household), count(sessions, Person)) == (0, 0)
    assert left_in(api.settings.work_dir) == []
    assert [action for _, action, _ in audited(sessions, ended["job_id"])] == [
        "job.start",
        "job.failed",
    ]


@pytest.mark.parametrize(
    "name,mapping,field,message",
    [
        ("list.md", None, "file", "cannot read '.md' files"),
        ("list.csv", b"columns:\n  A: not_a_field\n", "mapping", "not a registry field"),
        ("list.csv", b"\xff\xfe\x00", "mapping", "is not UTF-8 text"),
    ],
)
def test_an_upload_refused_at_once_leaves_nothing(api, sessions, name, mapping, field, message):
    extra = {"mapping": mapping} if mapping is not None else {}
    response = upload(api, flat_list(1), name=name, **extra)
    assert response.status_code == 422, response.text
    body = response.json()
    assert [error["field"] for error in body["errors"]] == [field]
    assert message in body["detail"]
    assert left_in(api.settings.work_dir) == []
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_only_those_who_may_import_can_upload(api, sessions):
    officer = auth_headers(sessions, api.settings, "program_officer", "SJ0101")
    response = upload(api, flat_list(1), headers=officer)
    assert response.status_code == 403, response.text
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
        denied = session.execute(
            select(AuditRecord.actor, AuditRecord.action, AuditRecord.outcome)
        ).all()
    assert [tuple(r) for r in denied] == [("program_officer-sj0101", "household.import", "denied")]


def test_rows_outside_the_registrars_areas_are_rejected(api, sessions):
    response = upload(api, flat_list(2, area=OTHER_LOCALITY))
    ended = wait_for_end(api, response.headers["location"])
    assert ended["state"] == "succeeded"
    assert ended["outcome"]["households_added"] == 0
    assert ended["outcome"]["rejected_rows"] == 4  # the list's rows: two households of two
    assert count(sessions, Household) == 0


def test_an_import_asked_to_stop_commits_the_batches_in_hand(engine, settings, sessions, tmp_path):
    """The checkpoint itself, without threads: `cancelled` says yes after the first batch."""
    make_areas(sessions)
    path = tmp_path / "list.csv"
    path.write_bytes(flat_list(600))
    settings.import_batch_size = 100
    batches = []
    report = import_path(
        engine,
        settings,
        path,
        progress=lambda done, total: batches.append(done),
        cancelled=lambda: bool(batches),
    )
    assert report.interrupted
    assert batches == [249]
    assert report.counts.households_added == 249
    assert count(sessions, Household) == 249


def test_the_command_line_records_its_import_as_a_job(database_url, sessions, tmp_path):
    make_areas(sessions)
    key = make_user(sessions, "importer", "administrator", service=True)
    path = tmp_path / "list.csv"
    path.write_bytes(flat_list(3, bad_sex_in=0))
    result = subprocess.run(
        [sys.executable, "-m", "sijill", "import", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "SIJILL_DATABASE_URL": database_url,
            "SIJILL_SERVICE_KEY": f"importer:{key}",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "2 households and 4 persons added" in result.stderr
    with sessions() as session:
        jobs = session.scalars(select(Job)).all()
    assert [(job.kind, job.state, job.started_by) for job in jobs] == [
        ("import", "succeeded", "importer")
    ]
    job = jobs[0]
    # The bad head's row (sex, and so its household) and its child's row.
    assert job.outcome["households_added"] == 2 and job.outcome["rejected_rows"] == 2
    assert Path(job.result_path) == path.with_suffix(".rejects.csv")
    # The command's rejects file is its user's, wherever they put it: the API does not serve
    # it, though the job is there to see.
    settings = Settings(database_url=database_url, work_dir=tmp_path / "work")
    with TestClient(create_app(settings), headers=auth_headers(sessions, settings)) as client:
        shown = client.get(f"/jobs/{job.id}").json()
        assert shown["state"] == "succeeded" and shown["rejects"] is None
        assert client.get(f"/jobs/{job.id}/rejects").status_code == 404
