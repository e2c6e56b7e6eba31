"""The working tree's API with authentication and the audit trail switched off, for
bench/bench_security.py's "off" side: what auth + audit add, measured on the same code.

Any bearer token is taken, unchecked, for a national administrator's (a request without one
is still refused); no audit entry is noted or written. Everything else is as served: the
same routes, queries, encrypted identifiers, hardening middleware and worker set-up. (FastAPI's
dependency_overrides would be the obvious switch, but it analyses the override's signature
on every request, which costs more than the authentication it replaces.) A benchmark's
stand-in only: nothing in Sijill can switch security off.
"""

from sijill import api
from sijill.security.audit import service as audit
from sijill.security.principal import Grant, Principal


def _nothing(*_args, **_kwargs) -> None:
    return None


async def _nothing_awaited(*_args, **_kwargs) -> None:
    return None


def _national_administrator(*_args, **_kwargs) -> Principal:
    return Principal("bench-off", (Grant("administrator", None),))


def app():
    audit.append = _nothing
    audit.append_now = _nothing
    audit.AuditWriter.record = _nothing_awaited
    Principal.audit = _nothing
    api.principal_from_token = _national_administrator
    return api.app_from_environment()
