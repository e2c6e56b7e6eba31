"""What a request may be: a JSON body declared as JSON (415 otherwise), a body that arrives
(408 when it stops), and a request ID that is an opaque token before it reaches the audit trail."""

import re
import socket
import threading

import pytest
import uvicorn
from fastapi import params
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import text

from factories import auth_headers, household, make_areas
from sijill.api import create_app
from sijill.core.ids import format_id, new_id
from sijill.core.settings import Settings


@pytest.fixture
def app(settings, sessions):
    make_areas(sessions)
    return create_app(settings)


PERSON_ID = format_id(new_id("person"))


def _json_routes(app) -> list[tuple[str, str]]:
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        body = getattr(route, "body_field", None)
        if isinstance(route, APIRoute) and body and not isinstance(body.field_info, params.Form):
            # A valid ID of the kind each parameter names, so that the body is what is judged.
            path = context.path_format.replace("{person_id}", PERSON_ID)
            path = re.sub(r"\{[^}]+\}", "1000561627", path)
            found += [(method, path) for method in sorted(route.methods)]
    return found


def test_every_json_route_answers_415_to_a_body_of_another_type(app, sessions, settings):
    routes = _json_routes(app)
    assert ("POST", "/households") in routes and len(routes) >= 3
    with TestClient(app, headers=auth_headers(sessions, settings)) as client:
        for method, path in routes:
            for content_type in ("text/plain", "application/x-www-form-urlencoded"):
                answer = client.request(
                    method, path, content=b'{"a": 1}', headers={"Content-Type": content_type}
                )
                assert answer.status_code == 415, (method, path, content_type, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.json()["title"] == "Unsupported Media Type"
        # JSON under any of its names is still read, and still validated.
        for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
            answer = client.post(
                "/households", json=household(), headers={"Content-Type": content_type}
            )
            assert answer.status_code == 201, answer.text
        assert client.post("/households", json={"members": "x"}).status_code == 422
    # The file upload reads a multipart form, not JSON: not among them.
    assert ("POST", "/imports") not in routes


@pytest.fixture
def server(settings, sessions):
    """The API served by uvicorn in this process, with a body deadline of a tenth of a second."""
    make_areas(sessions)
    quick = Settings(database_url=settings.database_url, request_body_timeout_seconds=0.1)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(quick), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    while not running.started:
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
        thread.join(0.01)
    yield port
    running.should_exit = True
    thread.join(30)


def test_a_body_shorter_than_announced_is_answered_408_and_closed(server):
    with socket.create_connection(("127.0.0.1", server), timeout=30) as client:
        client.sendall(
            b"POST /households HTTP/1.1\r\nHost: sijill\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"members": ['
        )
        answer = b""
        while chunk := client.recv(65536):  # the server closes the connection after it
            answer += chunk
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 408 Request Timeout", answer
    assert b"application/problem+json" in rest and b"did not arrive within 0.1 s" in rest


@pytest.mark.parametrize(
    "sent",
    ["r" * 65, "abc\x07def", "abc\r\nX-Evil: 1", "Amina Haddad", "أمينة", "id%20with%0a"],
    ids=["long", "bell", "crlf", "name", "arabic-name", "escaped"],
)
def test_a_request_id_that_is_not_an_opaque_token_is_replaced_in_the_audit_trail(
    app, sessions, settings, engine, sent
):
    with TestClient(app, headers=auth_headers(sessions, settings)) as client:
        created = client.post(
            "/households", json=household(), headers={"X-Request-ID": sent.encode("utf-8")}
        )
        assert created.status_code == 201, created.text
        accepted = client.post(
            "/households", json=household(), headers={"X-Request-ID": "req-42.a_b"}
        )
    made = created.headers["x-request-id"]
    assert re.fullmatch("[0-9a-f]{32}", made)
    assert accepted.headers["x-request-id"] == "req-42.a_b"
    with engine.connect() as connection:
        stored = set(connection.scalars(text("SELECT request_id FROM audit_record")))
    assert {made, "req-42.a_b"} <= stored
    assert not any(sent in (value or "") for value in stored)
