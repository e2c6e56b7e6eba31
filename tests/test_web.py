"""The web pages without a browser: sessions and their cookies, CSRF, languages and direction,
the pages' authorisation (a session on every page, the API's permissions and scopes behind
it), and a household out of scope answered as a missing one, byte for byte."""

import re
from types import SimpleNamespace

import anyio
import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import bindparam, select, text
from sqlalchemy.exc import DBAPIError

from factories import OTHER_LOCALITY, auth_headers, household, make_areas
from sijill.api import create_app
from sijill.core.ids import format_id, new_id, parse_id
from sijill.core.settings import Settings
from sijill.registry.models import Household
from sijill.security.audit.models import AuditRecord
from sijill.security.principal import Grant, Principal
from sijill.web.routing import PageRoute
from sijill.web.session import read_only
from web_support import PASSWORD, csrf_of, sign_in, web_user

# Pages anyone may open: the sign-in form (and its post), signing out (it only clears the
# cookies, and wants the CSRF token), the language switch, the root.
OPEN_PAGES = {"/web", "/web/sign-in", "/web/sign-out", "/web/language/{code}", "/web/password"}


@pytest.fixture
def world(settings, sessions):
    make_areas(sessions)
    settings = Settings(database_url=settings.database_url, login_attempts_per_minute=3)
    app = create_app(settings)
    with TestClient(app, headers=auth_headers(sessions, settings)) as api:
        inside = api.post("/households", json=household()).json()
        outside = api.post("/households", json=household(area_code=OTHER_LOCALITY)).json()
    web_user(sessions, "clerk", "registrar", "SJ01")
    return app, settings, sessions, inside, outside


def _client(app, **options) -> TestClient:
    return TestClient(app, follow_redirects=False, **options)


def _actions(sessions, action: str) -> list[AuditRecord]:
    with sessions() as session:
        return list(session.scalars(select(AuditRecord).where(AuditRecord.action == action)))


def test_every_page_route_needs_a_session(world):
    app = world[0]
    pages = [
        (method, context.path_format)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, PageRoute) and context.path_format not in OPEN_PAGES
        for method in context.original_route.methods
    ]
    assert len(pages) >= 6
    with _client(app) as client:
        for method, path in pages:
            url = path.replace("{household_id}", format_id(new_id("household")))
            url = url.replace("{batch_id}", "1")
            url = url.replace("{flag_id}", "1").replace("{merge_id}", "1")
            url = url.replace("{program}", "child-grant").replace("{job_id}", "1")
            url = url.replace("{instrument_id}", "1")
            url = url.replace("{person_id}", format_id(new_id("person")))
            url = url.replace("{version}", "pmt-0123456789abcdef")
            for cookies in ({}, {"sijill_access": "x.y.z", "sijill_refresh": "x.y.z"}):
                client.cookies.clear()
                client.cookies.update(cookies)
                response = client.request(method, url)
                assert response.status_code == 303, (method, path, response.text)
                assert response.headers["location"].startswith("/web/sign-in"), (method, path)
    # And none is in the API's document: the authorisation matrix of the API stays its own.
    assert not [p for p in app.openapi()["paths"] if p.startswith("/web")]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_sign_in_sets_the_session_cookies_and_sign_out_clears_them(world, scheme):
    app, _settings, sessions = world[:3]
    with _client(app, base_url=f"{scheme}://testserver") as client:
        response = sign_in(client, "clerk")
        assert response.status_code == 303 and response.headers["location"] == "/web/households"
        cookies = {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}
        assert set(cookies) >= {"sijill_access", "sijill_refresh", "sijill_csrf"}
        for cookie in cookies.values():
            flags = [flag.strip().lower() for flag in cookie.split(";")]
            assert "httponly" in flags and "samesite=lax" in flags and "path=/web" in flags
            assert ("secure" in flags) == (scheme == "https")
        assert client.get("/web/households").status_code == 200
        # Signing out needs the page's CSRF token: without it, nothing happens.
        assert client.post("/web/sign-out").status_code == 403
        assert client.get("/web/households").status_code == 200
        token = csrf_of(client.get("/web/households").text)
        out = client.post("/web/sign-out", data={"csrf": token})
        assert out.status_code == 303
        cleared = " ".join(out.headers.get_list("set-cookie"))
        assert 'sijill_access=""' in cleared and 'sijill_refresh=""' in cleared
        assert client.get("/web/households").status_code == 303
    assert [r.outcome for r in _actions(sessions, "auth.sign_in")] == ["ok"]


def test_sign_in_is_audited_and_limited_with_the_api(world):
    app, _settings, sessions = world[:3]
    with _client(app) as client:
        for _ in range(3):
            wrong = sign_in(client, "clerk", "not the password")
            assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
            assert "not the password" not in wrong.text
        # The limit is the API's, counted once for both: the right password waits too.
        assert sign_in(client, "clerk").status_code == 429
        api = client.post("/auth/token", json={"username": "clerk", "password": PASSWORD})
        assert api.status_code == 429
    outcomes = [r.outcome for r in _actions(sessions, "auth.sign_in")]
    assert outcomes.count("denied") == 3


def test_posts_without_the_csrf_token_are_refused(world):
    app = world[0]
    with _client(app) as client:
        form = client.get("/web/sign-in")
        data = {"username": "clerk", "password": PASSWORD}
        assert client.post("/web/sign-in", data=data).status_code == 403
        assert client.post("/web/sign-in", data={**data, "csrf": "0" * 64}).status_code == 403
        # A token is worth only with its own seed cookie.
        client.cookies.clear()
        refused = client.post("/web/sign-in", data={**data, "csrf": csrf_of(form.text)})
        assert refused.status_code == 403
        assert "sijill_access" not in refused.headers.get("set-cookie", "")
        assert sign_in(client, "clerk").status_code == 303
        # Signed in, the approval form is refused without its token too (before any lookup).
        assert client.post("/web/payments/batches/1/approve").status_code == 403


def test_language_cookie_sets_lang_and_direction(world):
    app, inside = world[0], world[3]
    with _client(app) as client:
        sign_in(client, "clerk")
        page = client.get(f"/web/households/{inside['household_id']}").text
        assert '<html lang="en" dir="ltr">' in page
        switched = client.get("/web/language/ar", params={"next": "/web/households"})
        assert switched.status_code == 303 and switched.headers["location"] == "/web/households"
        page = client.get(f"/web/households/{inside['household_id']}").text
        assert '<html lang="ar" dir="rtl">' in page
        assert "أفراد الأسرة" in page and "حيازة المسكن" in page  # the field catalogue's label
        assert f"<bdi>{inside['household_id']}</bdi>" in page
        client.get("/web/language/fr")
        assert '<html lang="fr" dir="ltr">' in client.get("/web/households").text
        # Only this site's pages are a place to go back to.
        away = client.get("/web/language/en", params={"next": "//evil.example/web"})
        assert away.headers["location"] == "/web/households"


@pytest.mark.parametrize(("digits", "one"), [("latn", "1"), ("arab", "١")])
def test_arabic_digits_setting(world, digits, one):
    app, settings, sessions, inside = world[:4]
    app = create_app(settings.model_copy(update={"arabic_digits": digits}))
    with _client(app) as client:
        sign_in(client, "clerk")
        client.cookies.set("sijill_lang", "ar", path="/web")
        page = client.get(f"/web/households/{inside['household_id']}").text
        version = re.search(r"<bdi>(.)</bdi>،", page)
        assert version and version.group(1) == one, page[:3000]


def test_out_of_scope_household_is_the_missing_page_byte_for_byte(world):
    app, outside = world[0], world[4]
    with _client(app) as client:
        sign_in(client, "clerk")
        hidden = client.get(f"/web/households/{outside['household_id']}")
        missing = client.get(f"/web/households/{format_id(new_id('household'))}")
        malformed = client.get("/web/households/12345")
        assert hidden.status_code == missing.status_code == malformed.status_code == 404
        assert hidden.content == missing.content == malformed.content
        assert outside["household_id"] not in hidden.text
        history = client.get(f"/web/households/{outside['household_id']}/history")
        assert history.status_code == 404 and history.content == missing.content


def test_a_household_page_is_answered_once_its_read_is_audited(world):
    """The page reads as the API's hottest read does: its audit record group-committed with
    other requests', and committed before the page leaves, a refusal's as well."""
    app, sessions, inside, outside = world[0], world[2], world[3], world[4]
    with _client(app) as client:
        sign_in(client, "clerk")
        assert client.get(f"/web/households/{inside['household_id']}").status_code == 200
        assert client.get(f"/web/households/{outside['household_id']}").status_code == 404
    read = [(r.actor, r.record_id, r.outcome) for r in _actions(sessions, "household.read")]
    assert ("clerk", str(parse_id("household", inside["household_id"])), "ok") in read
    assert ("clerk", str(parse_id("household", outside["household_id"])), "not_found") in read


def test_search_and_household_pages(world):
    app, inside = world[0], world[3]
    head = inside["members"][0]
    with _client(app) as client:
        sign_in(client, "clerk")
        found = client.get("/web/households", params={"name": head["given_name_lat"]})
        assert found.status_code == 200
        assert f'href="/web/households/{inside["household_id"]}"' in found.text
        elsewhere = client.get("/web/households", params={"area_code": OTHER_LOCALITY}).text
        assert not re.search(r'href="/web/households/[0-9]', elsewhere)
        page = client.get(f"/web/households/{inside['household_id']}").text
        assert head["given_name_ar"] in page and head["family_name_lat"] in page
        assert "Olive Street" in page and "fridge" in page
        # Codes as people call them, in the page's language.
        assert "head of household" in page
        client.cookies.set("sijill_lang", "fr", path="/web")
        french = client.get(f"/web/households/{inside['household_id']}").text
        assert "chef de ménage" in french and "réfrigérateur" in french
        client.cookies.set("sijill_lang", "en", path="/web")
        assert f"/web/households/{inside['household_id']}/history" in page
        history = client.get(f"/web/households/{inside['household_id']}/history")
        assert history.status_code == 200 and "Versions" in history.text


def test_search_results_link_their_pages_with_the_criteria(world, monkeypatch):
    from sijill.web import pages_registry

    app = world[0]
    monkeypatch.setattr(pages_registry, "PAGE_SIZE", 1)
    with TestClient(app, headers=auth_headers(world[2], world[1])) as api:
        api.post("/households", json=household())
    with _client(app) as client:
        sign_in(client, "clerk")
        first = client.get("/web/households", params={"area_code": "SJ010101"}).text
        assert 'rel="next" href="/web/households?area_code=SJ010101&amp;page=2"' in first
        assert 'rel="prev"' not in first
        second = client.get("/web/households", params={"area_code": "SJ010101", "page": 2}).text
        assert 'rel="prev" href="/web/households?area_code=SJ010101&amp;page=1"' in second
        assert 'rel="next"' not in second


def test_pages_keep_the_api_permissions(world):
    app, _settings, sessions, inside = world[:4]
    web_user(sessions, "numbers", "analyst")
    with _client(app) as client:
        sign_in(client, "numbers")
        assert client.get("/web/households", params={"name": "x"}).status_code == 403
        assert client.get(f"/web/households/{inside['household_id']}").status_code == 403
    with _client(app) as client:
        sign_in(client, "clerk")
        # A registrar reads households, not payment batches.
        assert client.get("/web/payments/batches").status_code == 403


def test_an_expired_access_token_is_renewed_with_the_refresh_token(world):
    app, _settings, sessions = world[:3]
    with _client(app) as client:
        sign_in(client, "clerk")
        client.cookies.set("sijill_access", "expired.or.forged", path="/web")
        response = client.get("/web/households")
        assert response.status_code == 200
        renewed = " ".join(response.headers.get_list("set-cookie"))
        assert "sijill_access=ey" in renewed
    assert [r.outcome for r in _actions(sessions, "auth.refresh")] == ["ok"]


def test_page_reads_keep_their_prepared_statements_in_a_read_only_transaction(world):
    """A page's reads end with a commit: on a rollback psycopg forgets the connection's
    prepared statements, and every page had each of its statements parsed and planned again.
    So that the commit can keep no write, their transaction is read-only."""
    app = world[0]
    if app.state.engine.dialect.name != "postgresql":
        pytest.skip("prepared statements and read-only transactions: PostgreSQL's")
    request, reader = SimpleNamespace(app=app), Principal("reader", (Grant("administrator", None),))
    probe = select(Household.id).where(Household.id == bindparam("household"))

    def prepared(session) -> int:
        session.execute(probe, {"household": 1}).all()
        return session.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()

    # One request at a time: every read takes the same pooled connection.
    counts = [anyio.run(read_only, request, reader, prepared) for _ in range(8)]
    assert counts[0] == 0 and counts[-1] >= 1, counts
    with pytest.raises(DBAPIError, match="read-only transaction"):
        anyio.run(read_only, request, reader, lambda s: s.execute(text("CREATE TABLE t (a int)")))


def test_requests_run_their_blocking_work_on_as_many_threads_as_the_setting_says(world):
    """`request_threads` bounds the threads of a process's requests (anyio's default is 40);
    with one, pages and API reads sent together still all get their answer: nothing a request
    runs in a thread waits for another thread of that pool."""
    from concurrent.futures import ThreadPoolExecutor

    from anyio import to_thread

    settings, sessions, inside = world[1], world[2], world[3]
    app = create_app(settings.model_copy(update={"request_threads": 1}))

    async def tokens() -> float:
        return to_thread.current_default_thread_limiter().total_tokens

    with _client(app) as client, TestClient(app, headers=auth_headers(sessions, settings)) as api:
        assert client.portal.call(tokens) == 1
        sign_in(client, "clerk")
        page = f"/web/households/{inside['household_id']}"
        read = f"/households/{inside['household_id']}"
        with ThreadPoolExecutor(8) as pool:
            pages = [pool.submit(client.get, page) for _ in range(6)]
            reads = [pool.submit(api.get, read) for _ in range(6)]
            assert [f.result(timeout=60).status_code for f in pages + reads] == [200] * 12
    with TestClient(create_app(settings)) as default:
        assert default.portal.call(tokens) == settings.request_threads == 2
