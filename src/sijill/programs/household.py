"""One household across the programs: each run's decision on it, explained in words, and its
entitlements, cycle by cycle. What a caseworker needs in front of a family; the web pages read
it, with the same scope and audit as every other read of the programs.

A household outside the user's areas answers as one that does not exist.
"""

from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from sijill.core.db import execute_read
from sijill.core.errors import NotFound
from sijill.core.settings import Settings
from sijill.programs.entitlement_models import APPROVED, Entitlement, EntitlementCycle
from sijill.programs.explain import DECISIONS, Explanation, explain_decisions
from sijill.programs.models import (
    EligibilityDecision,
    Enrollment,
    EnrollmentEvent,
    ProgramRun,
    ProgramVersion,
)
from sijill.registry.lookup import household_area_id
from sijill.security.principal import Principal
from sijill.security.roles import Permission

# The most recent runs shown: a household re-assessed every cycle has a long past, and each
# explanation reads its run's feature snapshot.
LATEST_RUNS = 20
# Decisions are keyed (run, household) and carry no index by household alone (it would slow
# the runs' bulk writes): the runs are walked newest first and the key probed for each, until
# enough decisions are found (PostgreSQL's plan: a nested loop under the limit).
_HOUSEHOLD = bindparam("household")
_LATEST = (
    DECISIONS.where(EligibilityDecision.household_id == _HOUSEHOLD)
    .order_by(ProgramRun.id.desc())
    .limit(LATEST_RUNS)
)


# Every household page asks the next two, so each statement is made once (built per call, it
# cost more Python than PostgreSQL takes to answer it), and reads only the columns shown.
_ENTITLEMENTS = (
    select(
        Entitlement.program,
        Entitlement.cycle,
        Entitlement.amount_minor,
        Entitlement.status,
        Entitlement.reason,
        EntitlementCycle.first_day,
        EntitlementCycle.last_day,
        EntitlementCycle.currency,
        EntitlementCycle.status.label("cycle_status"),
        # The spec's minor units alone, not the whole spec decoded for every row.
        ProgramVersion.body["minor_units"].as_integer().label("minor_units"),
    )  # fmt: skip
    # Joined on the entitlement's key (program, cycle, household), which has no index by
    # household alone: one probe of that key per cycle instead of a scan of them all.
    .select_from(EntitlementCycle)
    .join(
        Entitlement,
        (Entitlement.program == EntitlementCycle.program)
        & (Entitlement.cycle == EntitlementCycle.cycle)
        & (Entitlement.household_id == _HOUSEHOLD)
        & (Entitlement.batch_id == EntitlementCycle.id),
    )
    .outerjoin(
        ProgramVersion,
        (ProgramVersion.program == EntitlementCycle.program)
        & (ProgramVersion.version == EntitlementCycle.version),
    )
    .where(Entitlement.household_id == _HOUSEHOLD)
    .order_by(EntitlementCycle.first_day.desc(), Entitlement.program)
)
# The enrollment's key leads with the program: the programs are found through the events'
# index by household, then each row read by its key (a program holds millions of rows).
_ENROLLMENTS = (
    select(Enrollment.program, Enrollment.status, Enrollment.since, Enrollment.recertify_on)
    .where(
        Enrollment.program.in_(
            select(EnrollmentEvent.program)
            .where(EnrollmentEvent.household_id == _HOUSEHOLD)
            .distinct()
        ),
        Enrollment.household_id == _HOUSEHOLD,
    )
    .order_by(Enrollment.program)
)


def _in_scope(session: Session, principal: Principal, household_id: int) -> None:
    permission = Permission.PROGRAMS_READ
    principal.require(permission, record_type="household", record_id=str(household_id))
    area_id = household_area_id(session, household_id)
    if area_id is None or not principal.scope(session, permission).allows(area_id):
        raise NotFound(f"There is no household {household_id}")


def household_decisions(
    session: Session,
    settings: Settings,
    principal: Principal,
    household_id: int,
    language: str = "en",
) -> list[Explanation]:
    """The household's decisions in its latest runs, newest first, each explained (and the
    reading audited as `programs.explain`, once for them all)."""
    _in_scope(session, principal, household_id)
    decisions = execute_read(session, _LATEST, {"household": household_id}).all()
    return explain_decisions(session, settings, principal, household_id, decisions, language)


def household_entitlements(
    session: Session, principal: Principal, household_id: int
) -> list[dict[str, Any]]:
    """The household's entitlements, newest cycle first: amount (a Decimal in the currency's
    units, never a float), status and reason, and whether its cycle was approved."""
    _in_scope(session, principal, household_id)
    rows = execute_read(session, _ENTITLEMENTS, {"household": household_id}).all()
    principal.audit(
        "programs.entitlements", "ok", "household", str(household_id),
        permission=Permission.PROGRAMS_READ,
    )  # fmt: skip
    return [
        {
            "program": row.program,
            "cycle": row.cycle,
            "first_day": row.first_day,
            "last_day": row.last_day,
            # In the minor units its spec counts in, as payments reads them.
            "amount": Decimal(row.amount_minor).scaleb(
                -(2 if row.minor_units is None else row.minor_units)
            ),
            "currency": row.currency,
            "status": row.status,
            "reason": row.reason,
            "approved": row.cycle_status == APPROVED,
        }
        for row in rows
    ]


def household_enrollments(
    session: Session, principal: Principal, household_id: int
) -> list[dict[str, Any]]:
    """Where the household stands in each program it was ever notified in: status, since when,
    when due for recertification. For program readers, and for the caseworkers who record a
    household's answer (who need to see which programs wait for one)."""
    permission = Permission.PROGRAMS_READ
    if not principal.may(permission) and principal.may(Permission.PROGRAMS_ENROLL):
        permission = Permission.PROGRAMS_ENROLL
    principal.require(permission, record_type="household", record_id=str(household_id))
    area_id = household_area_id(session, household_id)
    if area_id is None or not principal.scope(session, permission).allows(area_id):
        raise NotFound(f"There is no household {household_id}")
    rows = execute_read(session, _ENROLLMENTS, {"household": household_id}).all()
    principal.audit(
        "programs.enrollments", "ok", "household", str(household_id), permission=permission
    )
    return [row._asdict() for row in rows]
