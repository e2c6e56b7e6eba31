"""Small cells stay hidden: in one answer, across the answers of one user, and across users
with overlapping areas (the differencing attack)."""

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from factories import LOCALITY, OTHER_LOCALITY, auth_headers, household, make_areas, person
from sijill.analytics.disclosure import (
    joint_pattern,
    scoped_view,
    subtree_totals,
    suppression_pattern,
)
from sijill.api import create_app
from sijill.core.settings import Settings

MEASURES = ("households", "persons", "refugees", "persons_with_disability")


def _determinable(figures: list[dict], unknown) -> bool:
    """Whether the figures (each a known sum of unknowns times coefficients) give `unknown`
    exactly: true when its indicator lies in the span of theirs."""
    if not figures:
        return False
    unknowns = sorted({u for figure in figures for u in figure} | {unknown}, key=str)
    index = {u: i for i, u in enumerate(unknowns)}
    rows = np.zeros((len(figures), len(unknowns)))
    for r, figure in enumerate(figures):
        for u, coefficient in figure.items():
            rows[r, index[u]] = coefficient
    target = np.zeros(len(unknowns))
    target[index[unknown]] = 1
    return np.linalg.matrix_rank(np.vstack([rows, target])) == np.linalg.matrix_rank(rows)


def _sum_of(cells: set) -> dict:
    return dict.fromkeys(cells, 1)


@st.composite
def trees(draw):
    """A random area tree (parents before children) with households in some areas."""
    size = draw(st.integers(2, 18))
    parent = {0: None}
    for area in range(1, size):
        parent[area] = draw(st.integers(0, area - 1))
    direct = {area: (draw(st.sampled_from([0, 0, 1, 2, 3, 4, 7, 12, 40])),) for area in range(size)}
    return parent, direct


@settings(max_examples=300, deadline=None)
@given(trees(), st.integers(2, 6))
def test_no_hidden_cell_follows_from_the_shown_ones(tree, min_cell):
    parent, direct = tree
    totals = {area: cell[0] for area, cell in subtree_totals(parent, direct).items()}
    hidden = suppression_pattern(parent, totals, min_cell)
    assert {a for a, n in totals.items() if 0 < n < min_cell} <= hidden
    # What the shown cells give away: for every area with children, `area - sum(children)`
    # is the households held directly in it, which the attacker is assumed to know; moving
    # the shown cells to the known side leaves an equation over the hidden ones.
    equations = []
    for area in totals:
        kids = [k for k, up in parent.items() if up == area and totals.get(k, 0) > 0]
        if not kids:  # the area is its own households: no equation to give it away
            continue
        equation = {k: -1 for k in kids if k in hidden}
        if area in hidden:
            equation[area] = 1
        if equation:
            assert len(equation) >= 2, (area, equation)
            equations.append(equation)
    for cell in hidden:
        assert not _determinable(equations, cell), (parent, direct, min_cell, sorted(hidden))


def _equations(parent, cells, hidden) -> list[dict]:
    equations = []
    for area in cells:
        kids = [k for k, up in parent.items() if up == area and k in cells]
        equation = {k: -1 for k in kids if k in hidden}
        if area in hidden and kids:
            equation[area] = 1
        if equation:
            equations.append(equation)
    return equations


@settings(max_examples=200, deadline=None)
@given(trees(), st.integers(2, 6), st.randoms(use_true_random=False))
def test_a_joint_pattern_protects_every_count_of_the_cells(tree, min_cell, rng):
    """A program's enrolled households and the households not enrolled, over the cells of
    the registry's pattern: no hidden cell of either count follows from the shown ones,
    even where a hidden cell's count is zero."""
    parent, direct = tree
    enrolled = {area: (rng.randint(0, n),) for area, (n,) in direct.items()}
    households = {a: c[0] for a, c in subtree_totals(parent, direct).items()}
    registry = suppression_pattern(parent, households, min_cell)
    chosen = {a: c[0] for a, c in subtree_totals(parent, enrolled).items()}
    rest = {a: n - chosen.get(a, 0) for a, n in households.items()}
    cells = {a for a, n in households.items() if n > 0}
    hidden = joint_pattern(parent, [chosen, rest], min_cell, cells=cells, hidden=registry)
    assert registry <= hidden
    for count in (chosen, rest):
        assert {a for a in cells if 0 < count.get(a, 0) < min_cell} <= hidden
    equations = _equations(parent, cells, hidden)
    for equation in equations:
        assert len(equation) >= 2, equation
    for cell in hidden:
        assert not _determinable(equations, cell), (parent, direct, enrolled, sorted(hidden))


def test_a_sum_with_a_hidden_cell_is_hidden():
    totals = {1: (10, 30), 2: (2, 5)}
    assert scoped_view([1], totals, frozenset({2}), 2) == (10, 30)
    assert scoped_view([1, 2], totals, frozenset({2}), 2) is None


@pytest.fixture
def country(settings, sessions):
    """Al Ain (district Valley, governorate North) holds 4 households; Harbour (district
    Coast, governorate South) holds 2: a small cell at 3."""
    make_areas(sessions)
    settings = Settings(database_url=settings.database_url, min_cell_size=3)
    app = create_app(settings)
    with TestClient(app, headers=auth_headers(sessions, settings)) as admin:
        for area, residency in [(LOCALITY, "citizen")] * 4 + [(OTHER_LOCALITY, "refugee")] * 2:
            members = [
                person(residency_status=residency),
                person("spouse", sex="F", residency_status=residency),
            ]
            created = admin.post("/households", json=household(area_code=area, members=members))
            assert created.status_code == 201, created.text
    return app, settings, sessions


# Which localities each figure sums, by the analyst's areas: (total, {region: localities}).
AL_AIN, HARBOUR = "al-ain", "harbour"
SCOPES = {
    None: ({AL_AIN, HARBOUR}, {"SJ01": {AL_AIN}, "SJ02": {HARBOUR}}),
    "SJ01": ({AL_AIN}, {"SJ01": {AL_AIN}}),
    "SJ0101": ({AL_AIN}, {"SJ01": {AL_AIN}}),
    OTHER_LOCALITY: ({HARBOUR}, {"SJ02": {HARBOUR}}),
    "SJ0201": ({HARBOUR}, {"SJ02": {HARBOUR}}),
}
SCOPES[("SJ0101", OTHER_LOCALITY)] = ({AL_AIN, HARBOUR}, {"SJ01": {AL_AIN}, "SJ02": {HARBOUR}})
SCOPES[("SJ01", "SJ0201")] = SCOPES[("SJ0101", OTHER_LOCALITY)]


def test_the_differencing_attack_learns_nothing(country):
    app, settings, sessions = country
    figures: dict[str, list[set]] = {measure: [] for measure in MEASURES}
    for scope, (total_cells, region_cells) in SCOPES.items():
        areas = list(scope) if isinstance(scope, tuple) else scope
        with TestClient(app, headers=auth_headers(sessions, settings, "analyst", areas)) as user:
            answer = user.get("/registry/summary")
        assert answer.status_code == 200, answer.text
        summary = answer.json()
        # A hidden cell hides every measure, not only its households.
        assert len({summary[m] is None for m in MEASURES}) == 1, (scope, summary)
        for measure in MEASURES:
            if summary[measure] is not None:
                figures[measure].append(_sum_of(total_cells))
        for region in summary["regions"]:
            assert (region["households"] is None) == (region["persons"] is None), region
            for measure in ("households", "persons"):
                if region[measure] is not None:
                    figures[measure].append(_sum_of(region_cells[region["code"]]))
    for measure in MEASURES:
        assert not _determinable(figures[measure], HARBOUR), (measure, figures[measure])
    # ... while what is safe to show is shown: the country's 6 households.
    assert _sum_of({AL_AIN, HARBOUR}) in figures["households"]


def test_who_may_read_households_sees_their_figures_unsuppressed(country):
    app, settings, sessions = country
    headers = auth_headers(sessions, settings, "program_officer", OTHER_LOCALITY)
    with TestClient(app, headers=headers) as officer:
        summary = officer.get("/registry/summary").json()
    assert (summary["households"], summary["persons"], summary["refugees"]) == (2, 4, 4)
    assert summary["min_cell"] is None
