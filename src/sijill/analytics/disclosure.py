"""Small-cell suppression on the area tree: one pattern for the whole country, then filtered.

A count of a few households can identify them, so cells (an area's households, and every
other measure of that area) below `min_cell` households are hidden: primary suppression. A
hidden cell must not come back by subtraction, in one answer or across answers: a
governorate's total minus its shown districts, or one analyst's total over a district and a
small locality minus another analyst's total over the district alone.

The method (the classic one of statistical offices' hierarchical tables):

- The cells are the areas of the tree, each counted over its whole subtree. Every area with
  children gives one equation, `area = households directly in it + sum of its children`;
  the households held directly are treated as known, which only ever hides more.
- The pattern is computed once over the whole country, never per user: which cells are
  hidden depends on the data, not on who asks, so two users (or one user with two scopes)
  see the same cell hidden or the same value shown.
- Complementary suppression: in every equation that holds a hidden cell, at least two cells
  are hidden, and when the area itself is shown the hidden children together hold at least
  `min_cell` households (else their sum, which the equation gives away, is itself a small
  cell). Complements are the smallest children that do it; an area whose hidden children
  cannot be complemented among their siblings is hidden itself. This repeats until every
  equation holds, since a complement opens its own children's equation.
- Every figure a user is shown is then a cell of the pattern or a sum of such cells, and a
  sum that includes a hidden cell is hidden too (`scoped_view`).

Why it is sufficient against exact recovery: each hidden cell appears in at most two
equations (its parent's and its own), so the equations and hidden cells form a forest. Any
combination of equations that isolated one hidden cell would have to cancel every other
hidden cell; but a tree of equations each holding at least two hidden cells always has at
least two hidden cells that appear in only one of its equations, and one of them cannot be
cancelled. What stays known is the sum of the hidden children of a shown area, which the
protection rule keeps at `min_cell` or more. Not covered: answers at different moments (a
registration between two queries changes a cell) and tables over other dimensions than the
area tree; each such table needs its own pattern.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence


def subtree_totals(
    parent: Mapping[int, int | None], direct: Mapping[int, Sequence[int]]
) -> dict[int, tuple[int, ...]]:
    """Each area's measures summed over its subtree, from the measures held directly in each
    area. Areas without any measure in their subtree are left out."""
    totals: dict[int, list[int]] = {}
    for area, measures in direct.items():
        current: int | None = area
        seen: set[int] = set()
        while current is not None and current not in seen:  # a cycle would loop for ever
            seen.add(current)
            row = totals.setdefault(current, [0] * len(measures))
            for i, value in enumerate(measures):
                row[i] += value
            current = parent.get(current)
    return {area: tuple(row) for area, row in totals.items()}


def suppression_pattern(
    parent: Mapping[int, int | None],
    households: Mapping[int, int],
    min_cell: int,
    *,
    known: Iterable[int] = (),
    hidden: Iterable[int] = (),
    cells: Iterable[int] | None = None,
) -> frozenset[int]:
    """The areas whose cells are hidden: primary (fewer than `min_cell` households but not
    none) and complementary. `households` counts each area's subtree. `known` are cells the
    user learns anyway (an export's own total is its row count): never relied on to hide
    anything. `hidden` are cells to hide whatever the counts (another pattern this one must
    keep). `cells` are the areas the table has a cell for, by default those with a count:
    another count of a table's cells (enrolled households) is unknown in a hidden cell even
    where it is zero."""
    if min_cell <= 1:
        return frozenset(hidden)
    table = set(cells) if cells is not None else {a for a, n in households.items() if n > 0}
    children: dict[int, list[int]] = defaultdict(list)
    for area, up in parent.items():
        if up is not None and area in table:
            children[up].append(area)
    result = {area for area, count in households.items() if 0 < count < min_cell}
    result |= set(hidden)
    fixed = set(known)
    changed = True
    while changed:
        changed = False
        for area in sorted(children):
            kids = sorted(children[area], key=lambda kid: (households.get(kid, 0), kid))
            changed |= _protect(area, kids, households, result, fixed, min_cell)
    return frozenset(result)


def _protect(
    area: int,
    kids: list[int],
    households: Mapping[int, int],
    hidden: set[int],
    known: set[int],
    min_cell: int,
) -> bool:
    """Hide more cells of the equation `area = direct + sum(kids)` until it gives none away."""
    changed = False
    while True:
        unknown_kids = [kid for kid in kids if kid in hidden and kid not in known]
        area_unknown = area in hidden and area not in known
        unknowns = len(unknown_kids) + area_unknown
        if unknowns == 0:
            return changed
        shortfall = (
            0 if area_unknown else min_cell - sum(households.get(k, 0) for k in unknown_kids)
        )
        if unknowns >= 2 and shortfall <= 0:
            return changed
        candidates = [kid for kid in kids if kid not in hidden and kid not in known]
        if candidates:
            enough = [kid for kid in candidates if households.get(kid, 0) >= shortfall]
            hidden.add(enough[0] if enough else candidates[-1])
        elif not area_unknown and area not in known and area not in hidden:
            hidden.add(area)
        elif unknowns == 1:
            # Nothing left to hide: the one hidden cell follows from the known ones, so it is
            # known too, and its own equation must protect its children without it.
            known.update(unknown_kids or [area])
            return True
        else:
            return changed  # the hidden cells' sum is known and small: the limit is the data's
        changed = True


def scope_roots(area_ids: Iterable[int], parent: Mapping[int, int | None]) -> list[int]:
    """The topmost areas of a set of areas (a scope holds its areas and all below them)."""
    areas = set(area_ids)
    return sorted(area for area in areas if parent.get(area) not in areas)


def scoped_view(
    parts: Iterable[int], totals: Mapping[int, Sequence[int]], hidden: frozenset[int], width: int
) -> tuple[int, ...] | None:
    """The sum of some cells, or None when any of them is hidden (the sum minus the shown
    ones would give it back)."""
    result = [0] * width
    for area in parts:
        if area in hidden:
            return None
        for i, value in enumerate(totals.get(area, (0,) * width)):
            result[i] += value
    return tuple(result)


def joint_pattern(
    parent: Mapping[int, int | None],
    counts: Sequence[Mapping[int, int]],
    min_cell: int,
    *,
    cells: Iterable[int],
    hidden: Iterable[int] = (),
) -> frozenset[int]:
    """One pattern that protects several counts of the same cells at once (a program's
    selected households, its enrolled ones, and the households of the area that are not):
    each count's own pattern, each keeping the cells the others hide, until none adds one.
    Hiding a cell for one count can only open an equation of another, never close one, and
    the cells are finite: the loop ends. `cells` are the table's cells (the areas with
    households): a count of zero in one of them is a figure like any other."""
    cells = frozenset(cells)
    result = frozenset(hidden)
    while True:
        before = result
        for count in counts:
            result = suppression_pattern(parent, count, min_cell, hidden=result, cells=cells)
        if result == before:
            return result
