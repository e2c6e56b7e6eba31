"""The registrar's long work in pages, without a browser: a file uploaded through the import
page ends as households registered, its job's page shows the counts and serves the rejected
rows as the API does; cancelling from the page needs its CSRF token; a job is the missing page
to anyone but its starter and national administrators, byte for byte; the upload's own errors
on the form; a dedup run started from the linkage page runs as a job; the list-matching form
refused to a registrar without a national scope, as the API refuses it."""

import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from factories import auth_headers, make_areas
from sijill.api import create_app
from sijill.core import clock
from sijill.core.ids import format_id, new_id
from sijill.core.settings import Settings
from sijill.jobs import kinds
from sijill.jobs.service import wait_for_end
from sijill.linkage.model import artifact
from sijill.linkage.models import LinkageModel
from sijill.registry.models import Household
from sijill.security.audit.models import AuditRecord
from sijill.security.principal import Grant, Principal
from sijill.security.roles import Permission
from test_jobs import flat_list
from web_support import csrf_of, sign_in, web_user

JOB = "/web/jobs/"


@pytest.fixture
def world(database_url, sessions, tmp_path):
    make_areas(sessions)
    settings = Settings(
        database_url=database_url,
        import_batch_size=100,
        work_dir=tmp_path / "work",
        max_upload_bytes=4096,
    )
    web_user(sessions, "clerk", "registrar", "SJ0101")
    web_user(sessions, "other", "registrar", "SJ0201")
    web_user(sessions, "chief", "administrator")
    web_user(sessions, "officer", "program_officer")
    app = create_app(settings)
    with TestClient(app):  # the app's lifespan: its job runner
        yield {"app": app, "settings": settings, "sessions": sessions}


def _client(world, username: str) -> TestClient:
    client = TestClient(world["app"], follow_redirects=False)
    assert sign_in(client, username).status_code == 303
    return client


def _upload(client, content: bytes, name: str = "list.csv", **data):
    token = csrf_of(client.get("/web/imports").text)
    files = {"file": (name, content, "text/csv")}
    return client.post("/web/imports", files=files, data={"csrf": token, **data})


def _ended(world, response) -> str:
    """The job a page started (303 to its page), once its end is recorded: its ID."""
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(JOB)
    job_id = location.removeprefix(JOB)
    assert wait_for_end(int(job_id), 120), "the job did not end"
    return job_id


def _households(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Household))


def test_an_import_uploaded_from_its_page_registers_the_households(world):
    with _client(world, "clerk") as clerk:
        form = clerk.get("/web/imports")
        assert form.status_code == 200
        assert 'enctype="multipart/form-data"' in form.text and "data-format.md" in form.text
        assert 'href="/web/imports"' in form.text  # the nav link, for a registrar
        job_id = _ended(world, _upload(clerk, flat_list(5, bad_sex_in=2), source="moh-2026"))
        assert _households(world["sessions"]) == 4
        shown = clerk.get(JOB + job_id)
        assert shown.status_code == 200
        html = shown.text
        assert "Finished" in html and "http-equiv" not in html and "/cancel" not in html
        assert '<th scope="row">Households added</th><td class="num"><bdi>4</bdi>' in html
        assert '<th scope="row">Rows rejected</th><td class="num"><bdi>2</bdi>' in html
        assert "moh-2026" in html and 'href="/web/households"' in html
        rejects = f'href="{JOB}{job_id}/rejects"'
        assert rejects in html and "Download the rejected rows" in html
        served = clerk.get(f"{JOB}{job_id}/rejects")
        assert served.status_code == 200 and served.headers["content-type"].startswith("text/csv")
    # The same file the API serves.
    admin = auth_headers(world["sessions"], world["settings"])
    with TestClient(world["app"], headers=admin) as api:
        same = api.get(f"/jobs/{job_id}/rejects")
    assert same.status_code == 200 and same.content == served.content
    assert served.text.lstrip("\ufeff").startswith("file,row,record_key,field,value,message")


def test_a_job_is_the_missing_page_to_anyone_else(world):
    with _client(world, "clerk") as clerk:
        job_id = _ended(world, _upload(clerk, flat_list(2, bad_sex_in=1)))
    with _client(world, "other") as other:
        theirs = other.get(JOB + job_id)
        missing = other.get(JOB + format_id(new_id("job")))
        malformed = other.get(JOB + "not-a-job")
        assert theirs.status_code == missing.status_code == malformed.status_code == 404
        assert theirs.content == missing.content == malformed.content
        assert other.get(f"{JOB}{job_id}/rejects").content == missing.content
        token = csrf_of(theirs.text)
        cancelled = other.post(f"{JOB}{job_id}/cancel", data={"csrf": token})
        assert cancelled.status_code == 404 and cancelled.content == missing.content
    # A national administrator sees it.
    with _client(world, "chief") as chief:
        assert chief.get(JOB + job_id).status_code == 200
    # Without the permission to import, no form (and no link to it).
    with _client(world, "officer") as officer:
        assert officer.get("/web/imports").status_code == 403
        assert 'href="/web/imports"' not in officer.get("/web/households").text
    with world["sessions"]() as session:
        denied = session.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.actor == "officer", AuditRecord.outcome == "denied")
        )
    assert denied == 1


@pytest.fixture
def held():
    """A kind of job that holds until the test lets it go, checking for cancellation."""
    started, release = threading.Event(), threading.Event()

    def work(ctx, params):
        started.set()
        while not release.wait(0.01):
            if ctx.cancelled():
                ctx.stopped_early()
                return None
        return None

    kinds.register(kinds.JobKind("test-held", work, Permission.HOUSEHOLD_IMPORT))
    yield started, release
    release.set()
    kinds.unregister("test-held")


def test_a_running_job_is_cancelled_from_its_page_with_its_csrf_token(world, held):
    started, release = held
    chief = Principal("chief", (Grant("administrator", None),))
    job = world["app"].state.jobs.start("test-held", None, chief)
    assert started.wait(60)
    with _client(world, "chief") as client:
        page = client.get(f"{JOB}{job.id}")
        assert page.status_code == 200
        assert '<meta http-equiv="refresh" content="5">' in page.text
        assert "<progress" not in page.text  # no total known: the count alone
        # Without the page's token, nothing happens.
        assert client.post(f"{JOB}{job.id}/cancel").status_code == 403
        assert client.post(f"{JOB}{job.id}/cancel", data={"csrf": "0" * 64}).status_code == 403
        assert "Running" in client.get(f"{JOB}{job.id}").text
        asked = client.post(f"{JOB}{job.id}/cancel", data={"csrf": csrf_of(page.text)})
        assert asked.status_code == 303 and asked.headers["location"] == f"{JOB}{job.id}"
        assert wait_for_end(job.id, 120)
        ended = client.get(f"{JOB}{job.id}")
        assert "Cancelled" in ended.text and "http-equiv" not in ended.text
        again = client.post(f"{JOB}{job.id}/cancel", data={"csrf": csrf_of(ended.text)})
        assert again.status_code == 409 and "already ended" in again.text


def test_the_import_form_says_what_is_wrong_with_the_upload(world):
    work = world["settings"].work_dir
    with _client(world, "clerk") as clerk:
        wrong = _upload(clerk, b"a,b\n1,2\n", name="list.txt")
        assert wrong.status_code == 422
        assert "This file cannot be read: send a .csv, .xlsx or .parquet file." in wrong.text
        assert 'aria-invalid="true"' in wrong.text
        token = csrf_of(wrong.text)
        empty = clerk.post(
            "/web/imports", files={"file": ("", b"", "text/csv")}, data={"csrf": token}
        )
        assert empty.status_code == 422 and "Choose a file." in empty.text
        large = _upload(clerk, b"x" * 5000)
        assert large.status_code == 413
        assert "larger than this server accepts (4,096 bytes)" in large.text
        # In French, the page's own words.
        clerk.get("/web/language/fr")
        assert '<html lang="fr"' in _upload(clerk, b"x", name="list.txt").text
        no_csrf = clerk.post("/web/imports", files={"file": ("list.csv", b"a", "text/csv")})
        assert no_csrf.status_code == 403
    assert _households(world["sessions"]) == 0
    # Nothing of the refused uploads is kept.
    assert not [path for path in work.rglob("*") if path.is_file()]


def test_dedup_from_the_linkage_page_runs_as_a_job_and_listing_needs_a_national_scope(world):
    with _client(world, "clerk") as clerk:
        form = clerk.get("/web/linkage")
        assert form.status_code == 200
        html = form.text
        # The areas of the registrar's scope, not the whole registry, and no list form.
        assert '<option value="SJ0101">' in html and '<option value="SJ010101">' in html
        assert 'value="SJ0201"' not in html and '<option value="">' not in html
        assert 'action="/web/linkage/link"' not in html
        token = csrf_of(html)
        whole = clerk.post("/web/linkage/dedup", data={"csrf": token, "area_code": ""})
        assert whole.status_code == 403 and "whole country" in whole.text
        outside = clerk.post("/web/linkage/dedup", data={"csrf": token, "area_code": "SJ02"})
        assert outside.status_code == 404 and "no area SJ02 in your scope" in outside.text
        bad = clerk.post(
            "/web/linkage/dedup", data={"csrf": token, "area_code": "SJ0101", "threshold": "2"}
        )
        assert bad.status_code == 422 and "between 0 and 1" in bad.text
        started = clerk.post("/web/linkage/dedup", data={"csrf": token, "area_code": "SJ0101"})
        job_id = _ended(world, started)
        page = clerk.get(JOB + job_id).text
        # A real run: this registry is too small to train a model on, and the page says so.
        assert "Finding duplicates" in page and "Failed" in page and "too few to train" in page
        # Matching a list needs the whole country: refused as the API refuses it, audited.
        files = {"file": ("deaths.csv", b"national_id,death_date\n", "text/csv")}
        listed = clerk.post("/web/linkage/link", files=files, data={"csrf": token, "kind": "civil"})
        assert listed.status_code == 403 and "whole country" in listed.text
    with world["sessions"]() as session:
        refusals = session.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.action == "linkage.link", AuditRecord.outcome == "denied")
        )
    assert refusals == 1
    with _client(world, "chief") as chief:
        national = chief.get("/web/linkage").text
        assert '<option value="">' in national and 'action="/web/linkage/link"' in national
        assert '<option value="civil">' in national
    with _client(world, "officer") as officer:
        assert officer.get("/web/linkage").status_code == 403


def test_a_linkage_model_is_written_out_for_review(world):
    settings = {
        "link_type": "dedupe_only",
        "probability_two_random_records_match": 0.0001,
        "blocking_rules_to_generate_predictions": [
            {"blocking_rule": "l.birth_date = r.birth_date", "sql_dialect": "duckdb"}
        ],
        "comparisons": [{
            "output_column_name": "first_name",
            "comparison_description": "first name, folded",
            "comparison_levels": [
                {"sql_condition": "first_name_l IS NULL OR first_name_r IS NULL",
                 "label_for_charts": "null", "is_null_level": True},
                {"sql_condition": "first_name_l = first_name_r", "label_for_charts": "exact",
                 "m_probability": 0.9, "u_probability": 0.01},
                {"sql_condition": "ELSE", "label_for_charts": "all other",
                 "m_probability": 0.1, "u_probability": 0.99},
            ],
        }],
    }  # fmt: skip
    stored = artifact(settings, records=3210)
    with world["sessions"].begin() as session:
        session.add(LinkageModel(version=stored["version"], trained_at=clock.utcnow(),
                                 trained_on_records=3210, body=stored))  # fmt: skip
    page_path = f"/web/linkage/models/{stored['version']}"
    with _client(world, "clerk") as clerk:
        page = clerk.get(page_path)
        assert page.status_code == 200
        assert '<code dir="ltr">first_name</code>' in page.text
        assert "<bdi>6.49</bdi>" in page.text  # log2(0.9 / 0.01)
        assert "<bdi>-3.31</bdi>" in page.text  # log2(0.1 / 0.99)
        assert "missing value: no weight" in page.text
        assert "l.birth_date = r.birth_date" in page.text
        assert "<bdi>3,210</bdi>" in page.text
        unknown = clerk.get("/web/linkage/models/m-0123456789abcdef")
        assert unknown.status_code == 404
    with _client(world, "officer") as officer:  # no linkage permission
        assert officer.get(page_path).status_code == 403
