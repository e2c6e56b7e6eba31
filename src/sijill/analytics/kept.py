"""Country-wide figures kept in the process for a while, with the time they were computed.

The registry's cells and each program's are sums over every household of the country (a few
seconds at a million households), the same for every user (the suppression pattern must not
depend on who asks: each user's view is cut from them afterwards). A dashboard opened by many
officers would compute them again for each; instead a process keeps them `max_age` seconds
and every answer says when its figures were computed. One thread computes a missing figure
while the others asking for it wait for its result rather than computing it too.

Keys carry the database's URL (one process may serve, or test, more than one registry) and
the count of area loads this process made (a new tree makes new cells at once; areas loaded by
another process are seen when the figures expire).
"""

import threading
from collections.abc import Callable, Hashable
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.areas import tree_changes

T = TypeVar("T")

_guard = threading.Lock()
_kept: dict[Hashable, tuple[datetime, object]] = {}
_computing: dict[Hashable, threading.Lock] = {}


def kept(
    session: Session, name: str, max_age: float, compute: Callable[[], T], *key: Hashable
) -> tuple[datetime, T]:
    """(when computed, value) of `compute()`, reused while younger than `max_age` seconds
    (0: computed every time)."""
    if max_age <= 0:
        return clock.utcnow(), compute()
    url = session.get_bind().url.render_as_string(hide_password=True)
    full_key = (url, name, tree_changes(), *key)
    found = _fresh(full_key, max_age)
    if found is not None:
        return found  # type: ignore[return-value]
    with _guard:
        lock = _computing.setdefault(full_key, threading.Lock())
    with lock:
        found = _fresh(full_key, max_age)  # computed by another thread while this one waited
        if found is not None:
            return found  # type: ignore[return-value]
        computed_at = clock.utcnow()
        value = compute()
        with _guard:
            # The same figure under older keys (another time, another tree) is stale now.
            for old in [k for k in _kept if k[:2] == full_key[:2] and k != full_key]:
                if _fresh(old, max_age) is None:
                    del _kept[old]
                    _computing.pop(old, None)
            _kept[full_key] = (computed_at, value)
        return computed_at, value


def _fresh(key: Hashable, max_age: float) -> tuple[datetime, object] | None:
    found = _kept.get(key)
    if found is None:
        return None
    age = clock.utcnow() - found[0]
    # A negative age (the clock set back) is as stale as an old one.
    return found if timedelta(0) <= age < timedelta(seconds=max_age) else None


def forget() -> None:
    """Drop every kept figure: a registry recreated under the same URL (tests do) starts
    with none."""
    with _guard:
        _kept.clear()
        _computing.clear()
