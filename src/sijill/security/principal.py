"""Who is acting: a signed-in user (or a named system job), their grants, the purpose they
declare, and the audit entries their request has produced so far.

The service layer asks the principal before it does anything: `require` for what a role may
do at all (403 if not), `scope` for where (a record outside it is answered as missing),
`check_consent` for whether the household agreed to this use of its data.
"""

from dataclasses import dataclass, field
from time import monotonic

from sqlalchemy import URL, ColumnElement, true
from sqlalchemy.orm import Session

from sijill.core.areas import areas_within, tree_changes
from sijill.core.errors import Forbidden, InvalidInput
from sijill.security.audit.service import AuditEntry
from sijill.security.consent import CONSENT_PURPOSES, DATA_SHARING_PREFIX, is_consent_purpose
from sijill.security.roles import (
    DEFAULT_PURPOSE,
    PURPOSES_WITHOUT_CONSENT,
    ROLE_PERMISSIONS,
    Permission,
)

PURPOSES = (*sorted(PURPOSES_WITHOUT_CONSENT), *CONSENT_PURPOSES)


def purpose_problem(purpose: str) -> str | None:
    if purpose in PURPOSES_WITHOUT_CONSENT or is_consent_purpose(purpose):
        return None
    return (
        f"'{purpose}' is not a purpose: use one of {', '.join(PURPOSES)}, "
        f"or {DATA_SHARING_PREFIX}<agency>"
    )


@dataclass(frozen=True)
class Grant:
    role: str
    area_id: int | None  # None: the whole country
    area_code: str | None = None


@dataclass(frozen=True)
class Scope:
    """Where a permission holds: every area (`area_ids` None) or these areas."""

    area_ids: frozenset[int] | None

    @property
    def national(self) -> bool:
        return self.area_ids is None

    def allows(self, area_id: int | None) -> bool:
        return self.area_ids is None or area_id in self.area_ids

    def condition(self, area_column) -> ColumnElement[bool]:
        if self.area_ids is None:
            return true()
        return area_column.in_(sorted(self.area_ids))


@dataclass
class Principal:
    username: str
    grants: tuple[Grant, ...]
    declared_purpose: str | None = None
    request_id: str | None = None
    pending_audit: list[AuditEntry] = field(default_factory=list)

    @classmethod
    def system(cls, job: str, request_id: str | None = None) -> "Principal":
        """A job of the installation itself (migrations, the demo's set-up): acts nationally."""
        return cls(f"system:{job}", (Grant("administrator", None),), request_id=request_id)

    # --- what and where -------------------------------------------------------------------

    def grants_for(self, permission: Permission) -> list[Grant]:
        return [g for g in self.grants if permission in ROLE_PERMISSIONS.get(g.role, ())]

    def may(self, permission: Permission) -> bool:
        return bool(self.grants_for(permission))

    def roles_for(self, permission: Permission) -> str | None:
        roles = sorted({g.role for g in self.grants_for(permission)})
        return ",".join(roles) if roles else None

    def require(
        self,
        permission: Permission,
        *,
        record_type: str | None = None,
        record_id: str | None = None,
    ) -> None:
        """Forbidden (and audited) unless one of the user's roles carries the permission."""
        if self.may(permission):
            return
        self.audit(str(permission), "denied", record_type, record_id)
        roles = ", ".join(sorted({g.role for g in self.grants})) or "no role"
        raise Forbidden(f"Your roles ({roles}) do not allow {permission.value}")

    def scope(self, session: Session, permission: Permission) -> Scope:
        """Where the user may exercise `permission`: their grants' areas and all below them."""
        self.require(permission)
        roots = [g.area_id for g in self.grants_for(permission)]
        if any(root is None for root in roots):
            return Scope(None)
        return Scope(cached_areas_within(session, roots))

    # --- purpose and consent ---------------------------------------------------------------

    def purpose(self, permission: Permission) -> str:
        if self.declared_purpose:
            return self.declared_purpose
        grants = self.grants_for(permission) or list(self.grants)
        return DEFAULT_PURPOSE.get(grants[0].role, "administration") if grants else "registration"

    def needs_consent(self, permission: Permission) -> str | None:
        """The purpose to check consent for, or None if this use needs none."""
        purpose = self.purpose(permission)
        return None if purpose in PURPOSES_WITHOUT_CONSENT else purpose

    def check_consent(
        self, permission: Permission, household_id: int, consented: list[str] | None
    ) -> None:
        purpose = self.needs_consent(permission)
        if purpose is None or purpose in (consented or []):
            return
        self.audit(str(permission), "refused_consent", "household", str(household_id))
        raise Forbidden(
            f"Household {household_id} has not consented to the use of its data for "
            f"'{purpose}'; its consent covers: {', '.join(consented or []) or 'nothing'}"
        )

    # --- audit -----------------------------------------------------------------------------

    def audit(
        self,
        action: str,
        outcome: str,
        record_type: str | None = None,
        record_id: str | None = None,
        *,
        permission: Permission | None = None,
    ) -> None:
        """Note an audit entry; the caller's transaction (or the request's end) appends it."""
        permission = permission or _permission_of(action)
        self.pending_audit.append(
            AuditEntry(
                actor=self.username,
                role=self.roles_for(permission) if permission else None,
                action=action,
                outcome=outcome,
                record_type=record_type,
                record_id=record_id,
                purpose=self.purpose(permission) if permission else self.declared_purpose,
                request_id=self.request_id,
            )
        )

    def take_audit(self) -> list[AuditEntry]:
        entries, self.pending_audit = self.pending_audit, []
        return entries


def _permission_of(action: str) -> Permission | None:
    try:
        return Permission(action)
    except ValueError:
        return None


def check_purpose(purpose: str | None) -> str | None:
    if purpose is None or purpose == "":
        return None
    problem = purpose_problem(purpose)
    if problem:
        raise InvalidInput(f"Invalid purpose: {problem}")
    return purpose


# A scoped user's areas are looked up once a minute per server process, not on every request:
# the tree changes when areas are loaded, which is rare, and a grant itself already outlives
# its withdrawal by up to an access token's life. Loading areas in this process makes them
# stale at once (`tree_changes`).
SCOPE_CACHE_SECONDS = 60.0
_scopes: dict[tuple[URL, tuple[int, ...]], tuple[float, int, frozenset[int]]] = {}


def cached_areas_within(session: Session, roots: list[int]) -> frozenset[int]:
    key = (session.get_bind().engine.url, tuple(sorted(set(roots))))
    known = _scopes.get(key)
    now = monotonic()
    if known is not None and now < known[0] and known[1] == tree_changes():
        return known[2]
    areas = frozenset(areas_within(session, roots))
    _scopes[key] = (now + SCOPE_CACHE_SECONDS, tree_changes(), areas)
    return areas


def forget_scopes() -> None:
    _scopes.clear()
