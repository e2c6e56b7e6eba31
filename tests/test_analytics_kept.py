"""The country's aggregates are kept a while by a server: the same figures, with the time they
were computed, until they are older than `aggregates_max_age`; then computed again."""

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from factories import LOCALITY, auth_headers, household, make_areas, person
from sijill.analytics import kept
from sijill.api import create_app
from sijill.core import clock
from sijill.core.settings import Settings


@pytest.fixture
def pinned(monkeypatch):
    """The clock, moved by the test: `pinned[0]` is now. Each test's registry is new, though
    its URL may be the last test's: figures kept for that one are dropped."""
    kept.forget()
    now = [clock.utcnow()]
    monkeypatch.setattr(clock, "utcnow", lambda: now[0])
    yield now
    kept.forget()


def _households(answer: dict) -> int | None:
    return answer["households"] if "households" in answer else answer["total"]["households"]


def _register(client: TestClient) -> None:
    created = client.post("/households", json=household(area_code=LOCALITY, members=[person()]))
    assert created.status_code == 201, created.text


@pytest.mark.parametrize("route", ["/registry/summary", "/registry/summary/areas"])
def test_figures_are_kept_until_they_are_older_than_the_setting(settings, sessions, pinned, route):
    make_areas(sessions)
    kept_for = Settings(database_url=settings.database_url, aggregates_max_age=300)
    app = create_app(kept_for)
    with TestClient(app, headers=auth_headers(sessions, kept_for)) as admin:
        _register(admin)
        first = admin.get(route).json()
        assert _households(first) == 1
        _register(admin)
        pinned[0] += timedelta(seconds=299)
        again = admin.get(route).json()
        # The same figures and the same time: nothing was computed again.
        assert again == first
        pinned[0] += timedelta(seconds=1)
        fresh = admin.get(route).json()
    assert _households(fresh) == 2
    assert fresh["computed_at"] > first["computed_at"]


def test_no_keeping_computes_every_time(settings, sessions, pinned):
    make_areas(sessions)
    app = create_app(Settings(database_url=settings.database_url, aggregates_max_age=0))
    with TestClient(app, headers=auth_headers(sessions, settings)) as admin:
        _register(admin)
        first = admin.get("/registry/summary").json()
        _register(admin)
        assert admin.get("/registry/summary").json()["households"] == first["households"] + 1


def test_each_suppression_threshold_keeps_its_own_figures(settings, sessions, pinned):
    """An analyst's suppressed figures and an administrator's plain ones are two patterns:
    neither is served for the other."""
    make_areas(sessions)
    kept_for = Settings(database_url=settings.database_url, aggregates_max_age=300, min_cell_size=3)
    app = create_app(kept_for)
    with TestClient(app, headers=auth_headers(sessions, kept_for)) as admin:
        _register(admin)
        plain = admin.get("/registry/summary").json()
    with TestClient(app, headers=auth_headers(sessions, kept_for, "analyst")) as analyst:
        suppressed = analyst.get("/registry/summary").json()
    assert plain["households"] == 1 and plain["min_cell"] is None
    assert suppressed["households"] is None and suppressed["min_cell"] == 3
