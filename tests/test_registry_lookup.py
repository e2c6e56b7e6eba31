"""A household's area is read once per transaction, and read again after a write or in the
next transaction: never a stale area for a scope check."""

from fastapi.testclient import TestClient
from sqlalchemy import event, update

from factories import LOCALITY, OTHER_LOCALITY, auth_headers, household, make_areas
from sijill.api import create_app
from sijill.core.ids import parse_id
from sijill.registry.lookup import household_area_id
from sijill.registry.models import Household


def test_one_read_per_transaction_and_again_after_a_write(engine, sessions, settings):
    areas = make_areas(sessions)
    with TestClient(create_app(settings), headers=auth_headers(sessions, settings)) as api:
        created = api.post("/households", json=household()).json()
    household_id = parse_id("household", created["household_id"])
    statements = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with sessions() as session, session.begin():
        assert household_area_id(session, household_id) == areas[LOCALITY]
        assert household_area_id(session, household_id) == areas[LOCALITY]
        assert household_area_id(session, -1) is None
        assert household_area_id(session, -1) is None
        assert len(statements) == 2
        session.execute(
            update(Household).where(Household.id == household_id)
            .values(area_id=areas[OTHER_LOCALITY])
        )  # fmt: skip
        assert household_area_id(session, household_id) == areas[OTHER_LOCALITY]
    with sessions() as session, session.begin():
        household_area_id(session, household_id)
    assert len(statements) == 5


def test_a_households_payment_history_reads_leave_its_area_known(engine, sessions, settings):
    """The payments history's textual statements only read: the household's area, read
    before them, is not read again after them (a household page asks it of every part)."""
    from sijill.payments import ledger
    from sijill.payments.reports import household_history
    from sijill.security.principal import Grant, Principal

    make_areas(sessions)
    with TestClient(create_app(settings), headers=auth_headers(sessions, settings)) as api:
        created = api.post("/households", json=household()).json()
    household_id = parse_id("household", created["household_id"])
    reader = Principal("payer", (Grant("payment_officer", None),))
    areas_read = []
    event.listen(
        engine, "before_cursor_execute",
        lambda *a: areas_read.append(a[2]) if "household.area_id" in a[2] else None,
    )  # fmt: skip
    with sessions() as session, session.begin():
        assert household_history(session, reader, created["household_id"]) == []
        assert ledger.household_moves(session, household_id) == []
        household_area_id(session, household_id)
    assert len(areas_read) == 1
