"""The API fuzzed from its own OpenAPI document with schemathesis, signed in.

Every operation of `/openapi.json` gets requests generated from its declared parameters and
bodies, valid and invalid ones, sent in-process to the ASGI app built as the other API tests
build it. Every answer must:

- not be a server error (no 5xx);
- have a status the operation documents, in the content type it documents;
- have a body that validates against the schema documented for that status.

Three tests share the work:

- `test_api_fuzz`: every operation as a national administrator, in all of schemathesis's
  phases (the document's examples, the coverage phase's boundary values, then random valid
  and invalid requests);
- `test_api_fuzz_scoped`: every operation as the registrar of one district (SJ0101), fuzzing
  only, so that the scope and permission paths answer too;
- `test_api_fuzz_registered_households`: the household operations on registered households
  (one inside the registrar's district, one outside it), with valid registrations and updates
  that carry fuzzed fields, so that the checks reach past input validation into the registry.

The budget is small and derandomized, so CI stays fast and a failure reproduces. A longer,
randomized run (a fresh seed each time, and the coverage phase's invalid values too), on
both backends:

    SIJILL_FUZZ_EXAMPLES=500 SIJILL_FUZZ_RANDOM=1 \\
    SIJILL_TEST_DATABASE_URL=postgresql+psycopg://sijill:sijill@localhost:5432/sijill_ci \\
    .venv/bin/pytest tests/test_api_fuzz.py -p no:cacheprovider -q

What the fuzzer found once (`FOUND`) stays as a regression test of its own.
"""

import os
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from factories import OTHER_LOCALITY, as_update, auth_headers, household, make_areas
from sijill.api import create_app
from sijill.core.settings import Settings

CI_EXAMPLES = 10
EXAMPLES = int(os.environ.get("SIJILL_FUZZ_EXAMPLES", CI_EXAMPLES))
# The coverage phase's invalid values (over 700 requests for the two household bodies alone)
# only in a longer run; in CI, invalid input comes from the fuzzing phase.
LONG_RUN = EXAMPLES > CI_EXAMPLES
RANDOM = os.environ.get("SIJILL_FUZZ_RANDOM", "") not in ("", "0")
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=not RANDOM,
    deadline=None,
    database=None,
    # The fixture's app and households serve every example of a test on purpose.
    suppress_health_check=list(HealthCheck),
)


def _load(phases: dict[str, Any]) -> schemathesis.BaseSchema:
    # The document does not depend on the database: it is read from an app whose database is
    # never opened. Every request goes to the app of its own test (`fuzz_api`). The config is
    # explicit, so that no schemathesis.toml found on the way changes what CI runs.
    app = create_app(Settings(database_url="sqlite://"))
    config = schemathesis.Config.from_dict({"phases": phases})
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


schema = _load({} if LONG_RUN else {"coverage": {"generation": {"mode": "positive"}}})
scoped_schema = _load({"coverage": {"enabled": False}})


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# --- the app under test -------------------------------------------------------------------------


@dataclass
class FuzzApi:
    backend: str
    app: FastAPI
    client: TestClient
    admin: dict[str, str]
    registrar: dict[str, str]
    # "inside" / "outside" the registrar's district -> registry ID
    households: dict[str, str] = field(default_factory=dict)

    def send(self, case, headers: dict[str, str]) -> None:
        case.call_and_validate(app=self.app, headers=headers, checks=CHECKS)


@pytest.fixture
def fuzz_api(settings, sessions, engine):
    make_areas(sessions)
    admin = auth_headers(sessions, settings)
    registrar = auth_headers(sessions, settings, "registrar", "SJ0101")
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False, headers=admin) as client:
        # Schemathesis starts the app's lifespan on its own event loop too, and ends it when the
        # test ends (its pytest plugin's teardown).
        api = FuzzApi(engine.dialect.name, app, client, admin, registrar)
        for where, fields in (("inside", {}), ("outside", {"area_code": OTHER_LOCALITY})):
            response = client.post("/households", json=household(**fields))
            assert response.status_code == 201, response.text
            api.households[where] = response.json()["household_id"]
        yield api


# --- the fuzz tests -----------------------------------------------------------------------------


@schema.parametrize()
@SETTINGS
def test_api_fuzz(case, fuzz_api):
    """Every operation as a national administrator, in every phase."""
    fuzz_api.send(case, fuzz_api.admin)


@scoped_schema.parametrize()
@SETTINGS
def test_api_fuzz_scoped(case, fuzz_api):
    """Every operation as the registrar of one district."""
    fuzz_api.send(case, fuzz_api.registrar)


def _ground(case, api: FuzzApi, target: str, grounded: bool) -> None:
    """Point the case at a registered household and, if `grounded`, lay its generated fields
    over a valid body, so that the registry's own rules judge them."""
    if "household_id" in case.path_parameters:
        case.path_parameters["household_id"] = api.households[target]
    if not grounded or not isinstance(case.body, dict):
        return
    fuzzed = {key: value for key, value in case.body.items() if key != "members"}
    if case.method == "POST":
        case.body = {**household(), **fuzzed}
    elif case.method == "PUT":
        current = api.client.get(f"/households/{api.households[target]}")
        assert current.status_code == 200, current.text
        case.body = {**as_update(current.json()), **fuzzed}


GROUNDED = [
    ("POST", "/households"),
    ("GET", "/households/{household_id}"),
    ("PUT", "/households/{household_id}"),
    ("GET", "/households/{household_id}/history"),
]


@pytest.mark.parametrize("role", ["administrator", "registrar"])
@pytest.mark.parametrize(
    "operation", [schema[path][method] for method, path in GROUNDED], ids=lambda o: o.label
)
def test_api_fuzz_registered_households(operation, role, fuzz_api):
    """The household operations on registered households, valid and invalid input."""
    cases = st.one_of(operation.as_strategy(mode) for mode in GenerationMode)
    headers = fuzz_api.admin if role == "administrator" else fuzz_api.registrar

    @SETTINGS
    @hypothesis.given(
        case=cases, target=st.sampled_from(["inside", "outside"]), grounded=st.booleans()
    )
    def fuzz(case, target, grounded):
        _ground(case, fuzz_api, target, grounded)
        fuzz_api.send(case, headers)

    fuzz()


# --- what the fuzzer found once ----------------------------------------------------------------


def _found_request(api: FuzzApi, finding: str) -> tuple[str, str, str, dict[str, Any]]:
    """The smallest request that showed the finding: method, path template, URL, options."""
    item = "/households/{household_id}"
    inside = api.households["inside"]
    return {
        # A body that is not UTF-8 was an undocumented 400.
        "not-utf8": ("POST", "/auth/token", "/auth/token", {"content": b'{"username": "\xff"}'}),
        # A UTC offset at the ends of the calendar overflowed: a 500.
        "as_of-overflow": (
            "GET",
            item,
            f"/households/{inside}?as_of=9999-12-31T23:59:59-23:59",
            {},
        ),
        # PostgreSQL refuses NUL characters in text: a 500 there, stored on SQLite.
        "nul-in-body": (
            "POST",
            "/households",
            "/households",
            {"json": household(address="12 Olive\x00")},
        ),
        "nul-in-query": ("GET", "/households", "/households?area_code=SJ%00", {}),
        "nul-in-username": (
            "POST",
            "/auth/token",
            "/auth/token",
            {"json": {"username": "a\x00b", "password": "x"}},
        ),
        # An upload whose multipart body cannot be parsed was an undocumented 400.
        "bad-multipart": (
            "POST",
            "/imports",
            "/imports",
            {
                "content": b"--b0undary\r\n[]--b0undary--\r\n",
                "headers": {"content-type": "multipart/form-data; boundary=b0undary"},
            },
        ),
    }[finding]


FOUND = [
    "not-utf8",
    "as_of-overflow",
    "nul-in-body",
    "nul-in-query",
    "nul-in-username",
    "bad-multipart",
]


@pytest.mark.parametrize("finding", FOUND)
def test_what_the_fuzzer_found(finding, fuzz_api):
    method, template, url, options = _found_request(fuzz_api, finding)
    headers = options.pop("headers", None) or (
        {"content-type": "application/json"} if "content" in options else {}
    )
    response = fuzz_api.client.request(method, url, headers=headers, **options)
    documented = schema.raw_schema["paths"][template][method.lower()]["responses"]
    assert response.status_code == 422, response.text
    assert str(response.status_code) in documented, response.text
