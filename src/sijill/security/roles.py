"""Roles, what each may do, and the purpose each acts for by default.

A user holds one or more grants, each a role in an area (or in the whole country). What a
user may do is the union of their roles' permissions; where they may do it is the union of
the areas of the grants whose role carries that permission.
"""

from enum import StrEnum


class Permission(StrEnum):
    HOUSEHOLD_READ = "household.read"  # a household's personal data
    HOUSEHOLD_SEARCH = "household.search"
    HOUSEHOLD_HISTORY = "household.history"
    HOUSEHOLD_REGISTER = "household.register"
    HOUSEHOLD_UPDATE = "household.update"
    HOUSEHOLD_IMPORT = "household.import"
    # List and decide the pairs of records flagged for review (`registry.reviews`); only
    # for the whole country, since a flag's two records may lie in different areas.
    REVIEW_FLAGS = "registry.review_flags"
    # Merge two records of one person and undo a merge (`registry.merges`): both records'
    # households must lie in the user's areas, so a pair across areas needs a wider scope.
    MERGE = "registry.merge"
    # Run record linkage (`sijill.linkage`): dedup of the registry or of an area, matching an
    # agency's list; it reads every person in its scope and proposes pairs for review.
    LINKAGE_RUN = "linkage.run"
    # Compute the household feature view and score households (PMT, MPI) in the user's
    # areas: a bulk read of every consenting household there (`sijill.targeting`).
    TARGETING_RUN = "targeting.run"
    # Fit a proxy means test on a survey, and evaluate designs against reference welfare:
    # survey data and aggregates, never a registry record.
    TARGETING_FIT = "targeting.fit"
    # Approve a fitted PMT for scoring: never the one who fitted it (four eyes).
    TARGETING_APPROVE = "targeting.approve"
    # Run a program's rules over the registry in the user's areas (`sijill.programs`):
    # eligibility, ranking, enrollment and recertification, each a recorded decision.
    PROGRAMS_RUN = "programs.run"
    # Read a program's decisions and their explanations in the user's areas: the program's
    # staff, and the grievance officers who hear appeals against them.
    PROGRAMS_READ = "programs.read"
    # Record a notified household's answer (enrolled or declined): caseworkers.
    PROGRAMS_ENROLL = "programs.enroll"
    # Generate a program's entitlements for a cycle in the user's areas (`programs.
    # entitlements`), and report the overlaps with other programs they would have.
    ENTITLEMENTS_GENERATE = "entitlements.generate"
    # Approve a generated cycle for payment: never the officer who generated it (four eyes).
    ENTITLEMENTS_APPROVE = "entitlements.approve"
    # Import whether households met a program's conditions in a cycle (school attendance,
    # health visits): program staff and the registrars who collect it.
    COMPLIANCE_IMPORT = "compliance.import"
    # Record or change how a household is paid (bank account, wallet, card, pick-up point):
    # caseworkers at registration and payment officers.
    INSTRUMENTS_WRITE = "payments.instruments.write"
    # Approve an instrument change the risk rule held: never its author (four eyes).
    INSTRUMENTS_APPROVE = "payments.instruments.approve"
    # Turn approved entitlements into payment batches in the user's areas; release an
    # approved batch to its provider; ingest providers' reports (`sijill.payments`).
    PAYMENTS_PREPARE = "payments.prepare"
    # Approve a prepared batch for release: never the officer who prepared it (four eyes).
    PAYMENTS_APPROVE = "payments.approve"
    PAYMENTS_RECONCILE = "payments.reconcile"
    # Read batches, the ledger and a household's payment history in the user's areas.
    PAYMENTS_READ = "payments.read"
    AGGREGATES = "registry.aggregates"  # counts by area, never a person
    EXPORT_PSEUDONYMISED = "export.pseudonymised"
    AUDIT_READ = "audit.read"
    # Mend a broken audit chain (`sijill audit repair`): administrators of the whole country.
    AUDIT_REPAIR = "audit.repair"
    USERS_MANAGE = "users.manage"
    KEYS_MANAGE = "keys.manage"
    AREAS_MANAGE = "areas.manage"


P = Permission
_READER = {P.HOUSEHOLD_READ, P.HOUSEHOLD_SEARCH}

ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "registrar": frozenset(
        _READER
        | {
            P.HOUSEHOLD_HISTORY,
            P.HOUSEHOLD_REGISTER,
            P.HOUSEHOLD_UPDATE,
            P.HOUSEHOLD_IMPORT,
            P.REVIEW_FLAGS,
            P.MERGE,
            P.LINKAGE_RUN,
            P.PROGRAMS_ENROLL,
            P.COMPLIANCE_IMPORT,
            P.INSTRUMENTS_WRITE,
        }
    ),
    "program_officer": frozenset(
        _READER
        | {
            P.AGGREGATES,
            P.TARGETING_RUN,
            P.TARGETING_FIT,
            P.TARGETING_APPROVE,
            P.PROGRAMS_RUN,
            P.PROGRAMS_READ,
            P.PROGRAMS_ENROLL,
            P.ENTITLEMENTS_GENERATE,
            P.ENTITLEMENTS_APPROVE,
            P.COMPLIANCE_IMPORT,
        }
    ),
    "payment_officer": frozenset(
        _READER
        | {
            P.INSTRUMENTS_WRITE,
            P.INSTRUMENTS_APPROVE,
            P.PAYMENTS_PREPARE,
            P.PAYMENTS_APPROVE,
            P.PAYMENTS_RECONCILE,
            P.PAYMENTS_READ,
        }
    ),
    "grievance_officer": frozenset(_READER | {P.HOUSEHOLD_HISTORY, P.PROGRAMS_READ}),
    "auditor": frozenset(
        _READER | {P.HOUSEHOLD_HISTORY, P.AGGREGATES, P.AUDIT_READ, P.PAYMENTS_READ}
    ),
    # Aggregates and pseudonymised exports only: never a name or an identifier.
    "analyst": frozenset({P.AGGREGATES, P.EXPORT_PSEUDONYMISED, P.TARGETING_FIT}),
    "administrator": frozenset(Permission),
}
ROLES = tuple(ROLE_PERMISSIONS)

# What each role uses the registry for unless the request declares another purpose.
DEFAULT_PURPOSE = {
    "registrar": "registration",
    "program_officer": "eligibility_assessment",
    "payment_officer": "payment",
    "grievance_officer": "grievance",
    "auditor": "audit",
    "analyst": "research",
    "administrator": "administration",
}
# The registry's own statutory functions: keeping the record, hearing a complaint, auditing
# and administering it. Every other use (assessing eligibility, paying, research, sharing with
# another agency) needs the household's consent for that purpose.
PURPOSES_WITHOUT_CONSENT = frozenset({"registration", "grievance", "audit", "administration"})
