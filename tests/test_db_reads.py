"""`core.db.execute_read`: a Core read on the session's connection sees what the session has
pending, as `Session.execute` does, reads in the session's transaction, and answers the rows
SQLAlchemy's result would."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    Numeric,
    String,
    bindparam,
    func,
    select,
    text,
    type_coerce,
)
from sqlalchemy.exc import StatementError

from sijill.core import clock
from sijill.core.db import Json, Timestamp, _plan, execute_read
from sijill.jobs.models import Job

COUNT = select(func.count()).select_from(Job).where(Job.kind == "test-read")


def _job(job_id: int) -> Job:
    return Job(
        id=job_id, kind="test-read", state="queued", started_by="t", created_at=clock.utcnow(),
        runner="test:1",
    )  # fmt: skip


def test_a_read_sees_the_sessions_pending_rows_and_its_transaction(sessions):
    with sessions() as session:
        session.add(_job(10000000001))  # pending: not flushed yet
        assert execute_read(session, COUNT).scalar() == 1
        assert execute_read(session, COUNT).scalar() == session.scalar(COUNT)
        session.rollback()
        assert execute_read(session, COUNT).scalar() == 0


# Every kind of value a read answers, typed as the models type them: on PostgreSQL the read
# goes to psycopg without SQLAlchemy's result layer, and must answer what that layer would.
_TYPED = text(
    "SELECT CAST(:number AS BIGINT) AS number, CAST(:name AS TEXT) AS name,"
    " CAST(NULL AS TEXT) AS missing, CAST(:day AS DATE) AS day,"
    " CAST(:moment AS TIMESTAMP WITH TIME ZONE) AS moment, CAST(:ratio AS NUMERIC) AS ratio,"
    " CAST(:ratio AS NUMERIC) AS ratio_as_float, CAST(:ratio AS FLOAT) AS latitude,"
    " CAST(:flag AS BOOLEAN) AS flag, CAST(:amount AS BIGINT) AS amount,"
    " CAST(:document AS JSONB) AS document"
).columns(
    number=BigInteger, name=String, missing=String, day=Date, moment=Timestamp,
    ratio=Numeric(10, 3), ratio_as_float=Float, latitude=Float, flag=Boolean, amount=BigInteger,
    document=Json,
)  # fmt: skip
_VALUES = {
    "number": 10000000001, "name": "سجل", "day": date(2026, 1, 15),
    "moment": datetime(2026, 1, 15, 8, 30, tzinfo=UTC), "ratio": Decimal("1.250"),
    "flag": True, "amount": 125, "document": '{"purposes": ["payment"], "rooms": 2}',
}  # fmt: skip
_LIMITED = select(Job.id, Job.kind).where(Job.kind == bindparam("kind")).order_by(Job.id).limit(2)
# A value bound per call and a key bound in the statement, both converted for the driver.
_KEYED = select(
    type_coerce(bindparam("document", type_=Json), Json)["minor_units"].as_integer().label("units")
)
_LISTED = select(Job.id).where(Job.id.in_(bindparam("ids", expanding=True))).order_by(Job.id)


def test_a_read_answers_what_sqlalchemys_result_would(sessions, engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("on SQLite every read goes through SQLAlchemy's result")
    with sessions() as session:
        for number in range(3):
            session.add(_job(10000000002 + number))
        session.flush()
        for statement, values in (
            (_TYPED, _VALUES),
            (_LIMITED, {"kind": "test-read"}),  # a LIMIT bound in the statement itself
            (_KEYED, {"document": {"minor_units": 3}}),
            (_LISTED, {"ids": [10000000002, 10000000004]}),  # rendered per call
        ):
            for _ in range(2):  # the first read learns the types, the next uses them
                expected = session.connection().execute(statement, values).all()
                found = execute_read(session, statement, values).all()
                assert [tuple(row) for row in found] == [tuple(row) for row in expected]
                assert [list(map(type, row)) for row in found] == [
                    list(map(type, row)) for row in expected
                ]
                assert [row._asdict() for row in found] == [row._asdict() for row in expected]
        # Each went the direct way but the one rendered per call.
        direct = [_plan(s, engine.dialect) is not None for s in (_TYPED, _LIMITED, _KEYED, _LISTED)]
        assert direct == [True, True, True, False]
        row = execute_read(session, _TYPED, _VALUES).first()
        assert (row.name, row.missing, row.flag) == ("سجل", None, True)
        assert row.document == {"purposes": ["payment"], "rooms": 2}
        assert execute_read(session, _LIMITED, {"kind": "test-read"}).scalar() == 10000000002
        assert execute_read(session, _LIMITED, {"kind": "none"}).first() is None
        assert execute_read(session, _KEYED, {"document": {"minor_units": 2}}).scalar() == 2
        # A value the statement needs and the call forgot is refused, as SQLAlchemy refuses it.
        with pytest.raises(StatementError, match="kind"):
            execute_read(session, _LIMITED, {})
