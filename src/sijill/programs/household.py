"""One household across the programs: each run's decision on it, explained in words, and its
entitlements, cycle by cycle. What a caseworker needs in front of a family; the web pages read
it, with the same scope and audit as every other read of the programs.

A household outside the user's areas answers as one that does not exist.
"""

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sijill.core.errors import NotFound
from sijill.core.settings import Settings
from sijill.programs.entitlement_models import APPROVED, Entitlement, EntitlementCycle
from sijill.programs.explain import Explanation, explain_decisions
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
_RUNS_PROBED = 200


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
    """The household's decisions in its latest runs, newest first, each explained (and each
    explanation audited, as `programs.explain` does)."""
    _in_scope(session, principal, household_id)
    # Decisions are keyed (run, household) and carry no index by household alone (it would
    # slow the runs' bulk writes): the key is probed once per run, newest runs first, a
    # chunk of runs at a time until enough decisions are found.
    # Whole decision rows: each explanation then finds its decision in the session.
    decisions: list[EligibilityDecision] = []
    newest_first = session.scalars(select(ProgramRun.id).order_by(ProgramRun.id.desc())).all()
    for start in range(0, len(newest_first), _RUNS_PROBED):
        chunk = newest_first[start : start + _RUNS_PROBED]
        decisions += session.scalars(
            select(EligibilityDecision)
            .where(
                EligibilityDecision.run_id.in_(chunk),
                EligibilityDecision.household_id == household_id,
            )
            .order_by(EligibilityDecision.run_id.desc())
        ).all()
        if len(decisions) >= LATEST_RUNS:
            break
    return explain_decisions(
        session, settings, principal, household_id, decisions[:LATEST_RUNS], language
    )


def household_entitlements(
    session: Session, principal: Principal, household_id: int
) -> list[dict[str, Any]]:
    """The household's entitlements, newest cycle first: amount (a Decimal in the currency's
    units, never a float), status and reason, and whether its cycle was approved."""
    _in_scope(session, principal, household_id)
    rows = session.execute(
        select(Entitlement, EntitlementCycle, ProgramVersion.body)
        # Joined on the entitlement's key (program, cycle, household), which has no index by
        # household alone: one probe of that key per cycle instead of a scan of them all.
        .select_from(EntitlementCycle)
        .join(
            Entitlement,
            (Entitlement.program == EntitlementCycle.program)
            & (Entitlement.cycle == EntitlementCycle.cycle)
            & (Entitlement.household_id == household_id)
            & (Entitlement.batch_id == EntitlementCycle.id),
        )
        .outerjoin(
            ProgramVersion,
            (ProgramVersion.program == EntitlementCycle.program)
            & (ProgramVersion.version == EntitlementCycle.version),
        )
        .where(Entitlement.household_id == household_id)
        .order_by(EntitlementCycle.first_day.desc(), Entitlement.program)
    ).all()
    principal.audit(
        "programs.entitlements", "ok", "household", str(household_id),
        permission=Permission.PROGRAMS_READ,
    )  # fmt: skip
    return [
        {
            "program": entitlement.program,
            "cycle": entitlement.cycle,
            "first_day": cycle.first_day,
            "last_day": cycle.last_day,
            # In the minor units its spec counts in, as payments reads them.
            "amount": Decimal(entitlement.amount_minor).scaleb(
                -int((body or {}).get("minor_units", 2))
            ),
            "currency": cycle.currency,
            "status": entitlement.status,
            "reason": entitlement.reason,
            "approved": cycle.status == APPROVED,
        }
        for entitlement, cycle, body in rows
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
    # The enrollment's key leads with the program: the programs are found through the events'
    # index by household, then each row read by its key (a program holds millions of rows).
    programs = select(EnrollmentEvent.program).where(EnrollmentEvent.household_id == household_id)
    rows = session.scalars(
        select(Enrollment)
        .where(Enrollment.program.in_(programs.distinct()), Enrollment.household_id == household_id)
        .order_by(Enrollment.program)
    ).all()
    principal.audit(
        "programs.enrollments", "ok", "household", str(household_id), permission=permission
    )
    return [
        {
            "program": row.program,
            "status": row.status,
            "since": row.since,
            "recertify_on": row.recertify_on,
        }
        for row in rows
    ]
