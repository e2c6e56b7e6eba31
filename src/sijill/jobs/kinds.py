"""The kinds of job, registered by the stage that owns each (`@job_kind`), so that the runner
never imports a stage above it.

A kind's work function takes a `JobContext` (`sijill.jobs.context`) and the parameters its
starter gave, reports progress through the context, polls `ctx.cancelled()` at its
checkpoints, and leaves its outcome on the context. `cleanup`, if given, is called with the
parameters once the job has ended, whether its work ran or not (an upload's files).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sijill.security.roles import Permission

if TYPE_CHECKING:
    from sijill.jobs.context import JobContext

Work = Callable[["JobContext", Any], Any]


@dataclass(frozen=True)
class JobKind:
    name: str
    work: Work
    permission: Permission  # what starting it needs
    cleanup: Callable[[Any], None] | None = None


_KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    if len(kind.name) > 32:
        raise ValueError(f"a job kind's name has at most 32 characters: {kind.name!r}")
    _KINDS[kind.name] = kind
    return kind


def job_kind(
    name: str, permission: Permission, cleanup: Callable[[Any], None] | None = None
) -> Callable[[Work], Work]:
    """Register the decorated function as the work of the job kind `name`."""

    def decorate(work: Work) -> Work:
        register(JobKind(name, work, permission, cleanup))
        return work

    return decorate


def get(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"no job kind {name!r} is registered") from None


def find(name: str) -> JobKind | None:
    return _KINDS.get(name)


def unregister(name: str) -> None:
    """For tests that register a kind of their own."""
    _KINDS.pop(name, None)
