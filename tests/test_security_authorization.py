"""The authorisation matrix: every route of the API × every role × a household inside and
outside the user's areas.

The routes come from the app's own OpenAPI document, so a route added without a rule here
fails `test_every_route_has_a_rule`. For each protected route and role:

- a role without the route's permission gets 403;
- a role with it gets the household in its areas;
- and a household outside its areas answers exactly as a household that does not exist: same
  status, same body once the ID is swapped. For lists and searches that means the same empty
  page and count; for aggregates, the same figures whether or not households outside the
  user's areas exist (the leak a peer system shipped: area rules that missed counts and
  grouped aggregates).
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from factories import (
    LOCALITY,
    OTHER_LOCALITY,
    as_update,
    auth_headers,
    child,
    household,
    make_areas,
    national_id,
    person,
    spouse,
)
from sijill.api import create_app
from sijill.core.ids import format_id, new_id
from sijill.core.settings import Settings
from sijill.security.roles import ROLE_PERMISSIONS, ROLES, Permission

EMPTY_LOCALITY = "SJ010102"  # in the scoped users' district, with no household
SCOPE = "SJ0101"  # every scoped user below holds their role in this district
ALL_PURPOSES = ["eligibility_assessment", "payment", "research"]
PUBLIC = {"health", "sign_in", "refresh_token", "change_password"}
ANY_SIGNED_IN = {"who_am_i", "list_features"}
# A job is its starter's (and national administrators'): tests/test_jobs.py checks who sees it.
OWN_JOBS = {"read_job", "cancel_job", "read_job_rejects"}
# An evaluation's report is its job's (tests/test_targeting_runs.py checks who reads it).
OWN_JOBS |= {"read_targeting_report"}


@dataclass
class Target:
    """A household as a request names it: by ID, a member's national ID and name, its area."""

    household_id: str
    national_id: str
    name: str
    area_code: str
    update: dict | None = None  # an update that changes nothing
    # Where to register a new household: for the missing target, an area that does not exist.
    register_area: str | None = None
    # Its members (head, spouse, child) and a merge of the child into the spouse.
    person_ids: tuple[str, ...] = ()
    merge_id: int | None = None


@dataclass
class Rule:
    permission: Permission
    call: Callable[[TestClient, Target], list]  # what the user gets to see
    aggregate: bool = False
    # Open only to users holding the permission for the whole country: others get 403.
    national_only: bool = False


def _seen(response) -> tuple:
    return (response.status_code, response.text)


def read(client, target):
    return [_seen(client.get(f"/households/{target.household_id}"))]


def read_as_of(client, target):
    return [_seen(client.get(f"/households/{target.household_id}?as_of=2100-01-01"))]


def history(client, target):
    return [_seen(client.get(f"/households/{target.household_id}/history"))]


def search(client, target):
    queries = [
        {"registry_id": target.household_id},
        {"national_id": target.national_id},
        {"name": target.name},
        {"area_code": target.area_code},
        {},
    ]
    return [_seen(client.get("/households", params=query)) for query in queries]


def update(client, target):
    return [_seen(client.put(f"/households/{target.household_id}", json=target.update))]


def register(client, target):
    payload = household(area_code=target.register_area or target.area_code, members=[person()])
    response = client.post("/households", json=payload)
    if response.status_code == 201:
        return [(201, "created")]
    return [_seen(response)]


def _figures(response) -> tuple:
    """An aggregate's answer without the moment its figures were computed: the figures are
    what is compared."""
    if response.status_code != 200:
        return _seen(response)
    body = response.json()
    body.pop("computed_at")
    return (response.status_code, json.dumps(body, sort_keys=True))


def summary(client, target):
    return [_figures(client.get("/registry/summary"))]


def summary_by_area(client, target):
    return [_figures(client.get("/registry/summary/areas"))]


def audit_log(client, target):
    return [_seen(client.get("/audit/records", params={"record_id": target.household_id}))]


def household_payments(client, target):
    return [_seen(client.get(f"/households/{target.household_id}/payments"))]


def review_flags(client, target):
    return [_seen(client.get("/review-flags"))]


def decide_review_flag(client, target):
    return [_seen(client.post("/review-flags/1/decision", json={"decision": "dismissed"}))]


def merge(client, target):
    head, spouse_id = target.person_ids[:2]
    return [_seen(client.post(f"/persons/{head}/merge", json={"lost": spouse_id}))]


def read_merge(client, target):
    return [_seen(client.get(f"/merges/{target.merge_id}"))]


def unmerge(client, target):
    return [_seen(client.post(f"/merges/{target.merge_id}/unmerge"))]


def flagged_pair(client, target):
    return [_seen(client.get("/linkage/review-flags/1"))]


def dedup(client, target):
    """Dedup of the target's area: accepted as a job, or refused at once as if the area did
    not exist (the job itself fails on an area this small: too few records to train)."""
    area = target.register_area or target.area_code
    response = client.post("/linkage/dedup", json={"area_code": area})
    if response.status_code == 202:
        return [(202, "created")]
    return [_seen(response)]


def link_list(client, target):
    """Upload a one-line civil list: a national list, so accepted as a job only for a user
    whose scope is the whole country."""
    content = "given_name_lat,sex,birth_date,death_date\nAhmad,M,1980-05-12,01/02/2026\n"
    response = client.post(
        "/linkage/link", data={"kind": "civil"}, files={"file": ("deaths.csv", content)}
    )
    if response.status_code == 202:
        return [(202, "created")]
    return [_seen(response)]


def me(client, target):
    return [_seen(client.get("/auth/me"))]


def import_file(client, target):
    """Upload a one-household list for the target's area: accepted as a job (its rows outside
    the user's areas are rejected by the job, where the user sees them as any other reject)."""
    area = target.register_area or target.area_code
    content = (
        "household_key,area_code,person_key,relationship,given_name_lat,sex,birth_date\n"
        f"H1,{area},P1,head,Ahmad,M,1980-05-12\n"
    )
    response = client.post("/imports", files={"file": ("list.csv", content, "text/csv")})
    if response.status_code == 202:
        return [(202, "created")]
    return [_seen(response)]


def feature_snapshot(client, target):
    """A feature snapshot of the target's area: a job, or refused as if the area did not
    exist."""
    area = target.register_area or target.area_code
    response = client.post("/targeting/snapshots", json={"area_code": area})
    if response.status_code == 202:
        return [(202, "created")]
    return [_seen(response)]


def mpi_run(client, target):
    area = target.register_area or target.area_code
    response = client.post("/targeting/mpi", json={"area_code": area})
    if response.status_code == 202:
        return [(202, "created")]
    return [_seen(response)]


def record_instrument(client, target):
    details = {"iban": "TR330006100519786457841326", "holder": "Ahmad Al-Khatib"}
    body = {"kind": "bank", "details": details}
    return [_seen(client.post(f"/households/{target.household_id}/instruments", json=body))]


def list_instruments(client, target):
    return [_seen(client.get(f"/households/{target.household_id}/instruments"))]


RULES: dict[str, Rule] = {
    "read_household": Rule(Permission.HOUSEHOLD_READ, read),
    "search_households": Rule(Permission.HOUSEHOLD_SEARCH, search),
    "read_household_history": Rule(Permission.HOUSEHOLD_HISTORY, history),
    "update_household": Rule(Permission.HOUSEHOLD_UPDATE, update),
    "register_household": Rule(Permission.HOUSEHOLD_REGISTER, register),
    "registry_summary": Rule(Permission.AGGREGATES, summary, aggregate=True),
    "registry_summary_by_area": Rule(Permission.AGGREGATES, summary_by_area, aggregate=True),
    "read_audit_log": Rule(Permission.AUDIT_READ, audit_log, national_only=True),
    # A flag pairs records of any areas: tests/test_review_flags.py checks who sees them.
    "list_review_flags": Rule(Permission.REVIEW_FLAGS, review_flags, national_only=True),
    "decide_review_flag": Rule(Permission.REVIEW_FLAGS, decide_review_flag, national_only=True),
    # Both persons in the user's areas (tests/test_registry_merges.py: pairs across areas).
    # The merge read and undone is the target's own; the new merge comes after them.
    "read_merge": Rule(Permission.MERGE, read_merge),
    "unmerge_persons": Rule(Permission.MERGE, unmerge),
    "merge_persons": Rule(Permission.MERGE, merge),
    "read_flagged_pair": Rule(Permission.REVIEW_FLAGS, flagged_pair, national_only=True),
    "record_payment_instrument": Rule(Permission.INSTRUMENTS_WRITE, record_instrument),
    "list_payment_instruments": Rule(Permission.INSTRUMENTS_WRITE, list_instruments),
    "read_household_payments": Rule(Permission.PAYMENTS_READ, household_payments),
    # Last: their jobs run in the background, after every other rule's checks.
    "start_import": Rule(Permission.HOUSEHOLD_IMPORT, import_file),
    "start_dedup": Rule(Permission.LINKAGE_RUN, dedup),
    "start_link": Rule(Permission.LINKAGE_RUN, link_list, national_only=True),
    "start_feature_snapshot": Rule(Permission.TARGETING_RUN, feature_snapshot),
    "start_mpi": Rule(Permission.TARGETING_RUN, mpi_run),
}
# Not area data: a linkage model holds parameters, never a record (tested below).
MODELS = {"read_linkage_model"}
# Targeting's models and runs: parameters and counts, never a record (tested below).
TARGETING = {
    "list_pmt_models",
    "read_pmt_model",
    "approve_pmt_model",
    "start_pmt_fit",
    "start_pmt_score",
    "read_targeting_run",
    "start_targeting_evaluation",
}
# A program run's record (counts, no record) and a decision's explanation: tested below, and
# by area in tests/test_programs_explain.py.
PROGRAMS = {"read_program_run", "explain_program_decision"}
# Starting a run and answering for households: tested below.
PROGRAM_ACTIONS = {"start_program_run", "answer_enrollment"}
# Deciding a held instrument change: tested below, and by area in
# tests/test_payments_instruments.py.
INSTRUMENT_DECISIONS = {"approve_payment_instrument", "reject_payment_instrument"}
# Payment runs, batches, reports and totals: tested below, and by area in
# tests/test_payments.py.
PAYMENT_ROUTES = {
    "start_payment_run",
    "list_payment_batches",
    "read_payment_batch",
    "approve_payment_batch",
    "release_payment_batch",
    "start_payment_reconciliation",
    "read_payment_totals",
    "check_payment_ledger",
}
EXTRA_CALLS = {"read_household": [read_as_of]}


def read_before_registration(client, target):
    # The oracle once found: "not yet registered" told an outsider the household exists.
    moments = ["2000-01-01", "1999-12-31T23:59:59.999", "2026-01-01T00:00:00+05:00"]
    return [_seen(client.get(f"/households/{target.household_id}?as_of={m}")) for m in moments]


def read_with_bad_parameters(client, target):
    return [
        _seen(client.get(f"/households/{target.household_id}?as_of=yesterday")),
        _seen(client.get(f"/households/{target.household_id}?as_of=2000-02-30")),
        _seen(client.get(f"/households/{target.household_id}x")),
    ]


def search_beyond_the_end(client, target):
    queries = [
        {"registry_id": target.household_id, "page": 2},
        {"area_code": target.area_code, "page": 1000, "page_size": 1},
        {"national_id": target.national_id, "page_size": 1000},
    ]
    return [_seen(client.get("/households", params=query)) for query in queries]


def update_refused(client, target):
    stale = {**target.update, "version": 99} if target.update else {"version": 99}
    invalid = {**(target.update or {}), "area_code": "SJ999999"}
    return [
        _seen(client.put(f"/households/{target.household_id}", json=stale)),
        _seen(client.put(f"/households/{target.household_id}", json=invalid)),
        _seen(client.put(f"/households/{target.household_id}", json={"version": 1})),
    ]


# Calls whose answer for a household of the user's own areas may be an error: only the
# answers about an outside and a missing household are compared.
PROBES = {
    "read_household": [read_before_registration, read_with_bad_parameters],
    "search_households": [search_beyond_the_end],
    "update_household": [update_refused],
}


def _operations(app) -> dict[str, tuple[str, str]]:
    operations = {}
    for path, methods in app.openapi()["paths"].items():
        for method, operation in methods.items():
            operations[operation["operationId"]] = (method.upper(), path)
    return operations


@pytest.fixture
def world(settings, sessions):
    make_areas(sessions)
    settings = Settings(database_url=settings.database_url, min_cell_size=1)
    app = create_app(settings)
    admin = auth_headers(sessions, settings)
    with TestClient(app, headers=admin) as client:

        def add(area_code: str, name: str, *, family: bool = False) -> Target:
            number = national_id()
            head = person(
                given_name_lat=name, national_id={"type": "national_id", "number": number}
            )
            payload = household(
                area_code=area_code, members=[head, spouse(), child()][: 1 + 2 * family]
            )
            payload["consent"]["purposes"] = ALL_PURPOSES
            created = client.post("/households", json=payload)
            assert created.status_code == 201, created.text
            public = created.json()
            person_ids = tuple(member["person_id"] for member in public["members"])
            merge_id = None
            if family:
                merged = client.post(
                    f"/persons/{person_ids[1]}/merge", json={"lost": person_ids[2]}
                )
                assert merged.status_code == 201, merged.text
                merge_id = merged.json()["merge_id"]
                public = client.get(f"/households/{public['household_id']}").json()
            return Target(
                public["household_id"],
                number,
                name,
                area_code,
                as_update(public),
                person_ids=person_ids,
                merge_id=merge_id,
            )

        inside = add(LOCALITY, "Insideperson", family=True)
        outside = add(OTHER_LOCALITY, "Outsideperson", family=True)
        missing = Target(
            format_id(new_id("household")),
            national_id(),
            "Nobodyatall",
            EMPTY_LOCALITY,
            inside.update,
            register_area="SJ999999",
            person_ids=tuple(format_id(new_id("person")) for _ in range(3)),
            merge_id=(outside.merge_id or 0) + 1_000_000,
        )
        yield app, settings, sessions, client, add, inside, outside, missing


def test_every_route_has_a_rule(settings, sessions):
    app = create_app(settings)
    unruled = set(_operations(app)) - set(RULES) - PUBLIC - ANY_SIGNED_IN - OWN_JOBS - MODELS
    unruled -= TARGETING
    unruled -= PROGRAMS | PROGRAM_ACTIONS
    unruled -= INSTRUMENT_DECISIONS
    unruled -= PAYMENT_ROUTES
    assert not unruled, f"routes without an authorisation rule in this test: {unruled}"


def test_every_protected_route_needs_a_token(settings, sessions):
    make_areas(sessions)
    app = create_app(settings)
    with TestClient(app) as client:
        for operation_id, (method, path) in _operations(app).items():
            if operation_id in PUBLIC:
                continue
            url = path.replace("{household_id}", format_id(new_id("household")))
            url = url.replace("{job_id}", format_id(new_id("job")))
            url = url.replace("{person_id}", format_id(new_id("person")))
            url = url.replace("{merge_id}", "1")
            response = client.request(method, url, json={})
            assert response.status_code == 401, (operation_id, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            bad = client.request(method, url, json={}, headers={"Authorization": "Bearer x.y.z"})
            assert bad.status_code == 401, (operation_id, bad.text)
    # The document says so too (get_principal reads the headers itself, and the OpenAPI
    # document is completed by hand): a client generated from it sends the token.
    for path, methods in app.openapi()["paths"].items():
        for operation in methods.values():
            documented = operation.get("security") == [{"HTTPBearer": []}]
            purpose = [p for p in operation.get("parameters", []) if p["name"] == "X-Purpose"]
            assert documented == (operation["operationId"] not in PUBLIC), path
            assert len(purpose) == (0 if operation["operationId"] in PUBLIC else 1), path


@pytest.mark.parametrize("role", ROLES)
def test_matrix(world, role):
    app, settings, sessions, admin, add, inside, outside, missing = world
    headers = auth_headers(sessions, settings, role, SCOPE)
    with TestClient(app, headers=headers) as client:
        for operation_id, rule in RULES.items():
            calls = [rule.call, *EXTRA_CALLS.get(operation_id, [])]
            allowed = rule.permission in ROLE_PERMISSIONS[role]
            for call in calls:
                where = f"{role} {operation_id} {call.__name__}"
                if not allowed or rule.national_only:
                    for status, body in call(client, inside):
                        assert status == 403, (where, body)
                    continue
                if rule.aggregate:
                    _check_aggregate(client, call, add, inside, where)
                    continue
                seen_inside = call(client, inside)
                assert all(s < 300 for s, _ in seen_inside), (where, seen_inside)
                assert any(inside.household_id in b or b == "created" for _, b in seen_inside)
                seen_outside = call(client, outside)
                seen_missing = call(client, missing)
                assert _anonymised(seen_outside, outside) == _anonymised(seen_missing, missing), (
                    where
                )
            if allowed and not rule.national_only and not rule.aggregate:
                for probe in PROBES.get(operation_id, []):
                    where = f"{role} {operation_id} {probe.__name__}"
                    seen_outside = _anonymised(probe(client, outside), outside)
                    assert seen_outside == _anonymised(probe(client, missing), missing), where


def _anonymised(seen: list, target: Target) -> list:
    """Responses with the target's own identifiers blanked, to compare two targets."""
    blanked = []
    for status, body in seen:
        values = (target.household_id, target.national_id, target.name, target.area_code)
        for value in (*values, target.register_area or target.area_code, *target.person_ids):
            body = body.replace(value, "<target>")
        if target.merge_id is not None:
            # Only where a merge is named: its ID is a small number that other fields hold too.
            body = re.sub(rf"(merge |/merges/){target.merge_id}\b", r"\1<target>", body)
        blanked.append((status, body))
    return blanked


def _check_aggregate(client, call, add, inside, where) -> None:
    before = call(client, inside)
    assert all(s == 200 for s, _ in before), (where, before)
    add(OTHER_LOCALITY, "Outsidesecond")
    assert call(client, inside) == before, f"{where}: counts households outside the user's areas"
    add(LOCALITY, "Insidesecond")
    assert call(client, inside) != before, f"{where}: does not count the user's own households"


@pytest.mark.parametrize("role", sorted(ROLE_PERMISSIONS))
def test_linkage_models_are_for_those_who_run_linkage(world, role):
    app, settings, sessions, *_ = world
    with TestClient(app, headers=auth_headers(sessions, settings, role, SCOPE)) as client:
        answer = client.get("/linkage/models/m-0123456789abcdef")
    allowed = Permission.LINKAGE_RUN in ROLE_PERMISSIONS[role]
    assert answer.status_code == (404 if allowed else 403), (role, answer.text)


@pytest.mark.parametrize("role", sorted(ROLE_PERMISSIONS))
def test_targeting_models_and_runs_follow_their_permissions(world, role):
    app, settings, sessions, *_ = world
    version = "pmt-0123456789abcdef"
    permissions = ROLE_PERMISSIONS[role]
    calls = [
        (
            "list_pmt_models",
            lambda c: c.get("/targeting/pmt/models"),
            Permission.TARGETING_FIT in permissions or Permission.TARGETING_RUN in permissions,
            200,
        ),
        (
            "read_pmt_model",
            lambda c: c.get(f"/targeting/pmt/models/{version}"),
            Permission.TARGETING_FIT in permissions or Permission.TARGETING_RUN in permissions,
            404,
        ),
        (
            "approve_pmt_model",
            lambda c: c.post(f"/targeting/pmt/models/{version}/approve"),
            Permission.TARGETING_APPROVE in permissions,
            404,
        ),
        (
            "start_pmt_fit",
            lambda c: c.post(
                "/targeting/pmt/models",
                data={"poverty_line": "1800"},
                files={name: (f"{name}.txt", "x") for name in ("survey", "households", "persons")},
            ),
            Permission.TARGETING_FIT in permissions,
            422,
        ),
        (
            "start_pmt_score",
            lambda c: c.post(
                "/targeting/pmt/score", json={"model_version": version, "area_code": SCOPE}
            ),
            Permission.TARGETING_RUN in permissions,
            404,
        ),
        (
            "read_targeting_run",
            lambda c: c.get("/targeting/runs/1"),
            Permission.TARGETING_RUN in permissions,
            404,
        ),
    ]
    calls.append(
        (
            "start_targeting_evaluation",
            lambda c: c.post(
                "/targeting/evaluations",
                data={"area_code": SCOPE},
                files={"reference": ("reference.csv", "household_key,consumption_pc\nH1,10\n")},
            ),
            Permission.TARGETING_RUN in permissions,
            422,
        )
    )
    assert {name for name, *_ in calls} == TARGETING
    with TestClient(app, headers=auth_headers(sessions, settings, role, SCOPE)) as client:
        for name, call, allowed, status in calls:
            answer = call(client)
            assert answer.status_code == (status if allowed else 403), (role, name, answer.text)


@pytest.mark.parametrize("role", sorted(ROLE_PERMISSIONS))
def test_program_runs_and_explanations_are_for_program_readers(world, role):
    app, settings, sessions, admin, add, inside, outside, missing = world
    allowed = Permission.PROGRAMS_READ in ROLE_PERMISSIONS[role]
    calls = {
        "read_program_run": "/programs/runs/1",
        "explain_program_decision": f"/programs/runs/1/households/{inside.household_id}"
        "/explanation?language=ar",
    }
    assert set(calls) == PROGRAMS
    with TestClient(app, headers=auth_headers(sessions, settings, role, SCOPE)) as client:
        for name, url in calls.items():
            answer = client.get(url)
            assert answer.status_code == (404 if allowed else 403), (role, name, answer.text)


@pytest.mark.parametrize("role", sorted(ROLE_PERMISSIONS))
def test_program_runs_and_enrollment_answers_follow_their_permissions(world, role):
    app, settings, sessions, admin, add, inside, outside, missing = world
    permissions = ROLE_PERMISSIONS[role]
    calls = {
        # An empty spec is refused (422) once the permission and the area are granted.
        "start_program_run": (
            lambda c: c.post(
                "/programs/runs", data={"area_code": SCOPE}, files={"spec": ("s.yaml", "{}")}
            ),
            Permission.PROGRAMS_RUN in permissions,
            422,
        ),
        # A household not notified in the program answers 404 once the permission is granted.
        "answer_enrollment": (
            lambda c: c.post(
                "/programs/child-grant/enrollments",
                json={"household_ids": [inside.household_id], "answer": "enrolled"},
            ),
            Permission.PROGRAMS_ENROLL in permissions,
            404,
        ),
    }
    assert set(calls) == PROGRAM_ACTIONS
    with TestClient(app, headers=auth_headers(sessions, settings, role, SCOPE)) as client:
        for name, (call, allowed, status) in calls.items():
            answer = call(client)
            assert answer.status_code == (status if allowed else 403), (role, name, answer.text)


@pytest.mark.parametrize("role", sorted(ROLE_PERMISSIONS))
def test_instrument_changes_are_decided_by_those_who_approve_them(world, role):
    app, settings, sessions, *_ = world
    allowed = Permission.INSTRUMENTS_APPROVE in ROLE_PERMISSIONS[role]
    with TestClient(app, headers=auth_headers(sessions, settings, role, SCOPE)) as client:
        for name in sorted(INSTRUMENT_DECISIONS):
            verb = name.partition("_")[0]
            answer = client.post(f"/payments/instruments/999999/{verb}")
            assert answer.status_code == (404 if allowed else 403), (role, name, answer.text)


@pytest.mark.parametrize("role", sorted(ROLE_PERMISSIONS))
def test_payment_routes_follow_their_permissions(world, role):
    app, settings, sessions, *_ = world
    permissions = ROLE_PERMISSIONS[role]
    calls = {
        # No approved entitlement in this registry: 404 once the permission is granted.
        "start_payment_run": (
            lambda c: c.post("/payments/runs", json={"cycle": "2026-11", "area_code": SCOPE}),
            Permission.PAYMENTS_PREPARE, 404,
        ),
        "list_payment_batches": (
            lambda c: c.get("/payments/batches"), Permission.PAYMENTS_READ, 200
        ),
        "read_payment_batch": (
            lambda c: c.get("/payments/batches/999999"), Permission.PAYMENTS_READ, 404
        ),
        "approve_payment_batch": (
            lambda c: c.post("/payments/batches/999999/approve"), Permission.PAYMENTS_APPROVE, 404
        ),
        "release_payment_batch": (
            lambda c: c.post("/payments/batches/999999/release"), Permission.PAYMENTS_PREPARE, 404
        ),
        # An unknown provider is refused (422) once the permission is granted.
        "start_payment_reconciliation": (
            lambda c: c.post(
                "/payments/reports", data={"provider": "nobody"},
                files={"report": ("r.xml", "<x/>")},
            ),
            Permission.PAYMENTS_RECONCILE, 422,
        ),
        "read_payment_totals": (
            lambda c: c.get("/payments/totals"), Permission.PAYMENTS_READ, 200
        ),
        # The whole ledger's proof needs a national scope: 403 for these district users too.
        "check_payment_ledger": (
            lambda c: c.get("/payments/ledger/check"), Permission.PAYMENTS_READ, 403
        ),
    }  # fmt: skip
    assert set(calls) == PAYMENT_ROUTES
    with TestClient(app, headers=auth_headers(sessions, settings, role, SCOPE)) as client:
        for name, (call, permission, status) in calls.items():
            answer = call(client)
            allowed = permission in permissions
            assert answer.status_code == (status if allowed else 403), (role, name, answer.text)


@pytest.mark.parametrize("role", ["auditor", "administrator", "registrar"])
def test_audit_log_is_for_national_auditors(world, role):
    app, settings, sessions, admin, add, inside, outside, missing = world
    with TestClient(app, headers=auth_headers(sessions, settings, role)) as client:
        client.get(f"/households/{inside.household_id}")
        response = client.get("/audit/records", params={"record_id": inside.household_id})
    if role == "registrar":
        assert response.status_code == 403
        return
    assert response.status_code == 200, response.text
    records = response.json()["data"]
    assert [r["action"] for r in records][:1] == ["household.read"]
    assert {r["record_id"] for r in records} == {inside.household_id}


def test_a_lone_small_cell_takes_a_complementary_one_with_it(settings, sessions):
    make_areas(sessions)
    settings = Settings(database_url=settings.database_url, min_cell_size=3)
    app = create_app(settings)
    with TestClient(app, headers=auth_headers(sessions, settings)) as admin:
        for area in [OTHER_LOCALITY] + [LOCALITY] * 4:
            assert admin.post("/households", json=household(area_code=area)).status_code == 201
    with TestClient(app, headers=auth_headers(sessions, settings, "analyst")) as analyst:
        summary = analyst.get("/registry/summary").json()
    # North holds 4 households, South 1: showing North and the total of 5 would give South.
    assert summary["households"] == 5
    assert [region["households"] for region in summary["regions"]] == [None, None]


def test_summary_suppresses_small_cells_for_analysts(settings, sessions):
    make_areas(sessions)
    settings = Settings(database_url=settings.database_url, min_cell_size=3)
    app = create_app(settings)
    with TestClient(app, headers=auth_headers(sessions, settings)) as admin:
        for _ in range(2):
            assert admin.post("/households", json=household()).status_code == 201
        full = admin.get("/registry/summary").json()
    assert full["households"] == 2 and full["min_cell"] is None
    with TestClient(app, headers=auth_headers(sessions, settings, "analyst")) as analyst:
        suppressed = analyst.get("/registry/summary").json()
    assert suppressed["min_cell"] == 3
    assert suppressed["households"] is None and suppressed["persons"] is None
    assert all(region["households"] is None for region in suppressed["regions"])
