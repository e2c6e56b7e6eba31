"""A program's payment cycles, named by its period so that monthly and quarterly programs
live side by side:

    monthly     2026-11      November 2026
    bimonthly   2026-11      November and December 2026: a bimonthly cycle is named by its
                             first month, which is odd (Jan, Mar, May, Jul, Sep, Nov), so every
                             bimonthly program shares the same calendar of cycles
    quarterly   2026-Q4      October to December 2026

A cycle runs from its first day to its last day, both included.
"""

import re
from dataclasses import dataclass
from datetime import date, timedelta

from sijill.core.errors import InvalidInput

MONTHS = {"monthly": 1, "bimonthly": 2, "quarterly": 3}
# A cycle's name as requests may give it (a month or a quarter), checked before it is parsed.
CYCLE_PATTERN = r"^\d{4}-(0[1-9]|1[0-2]|Q[1-4])$"
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


@dataclass(frozen=True)
class Cycle:
    kind: str  # monthly | bimonthly | quarterly
    name: str
    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def previous(self) -> "Cycle":
        return cycle_of(self.kind, self.first - timedelta(days=1))

    def overlap(self, first: date, last: date) -> int:
        """Days of [first, last] inside this cycle."""
        return max(0, (min(last, self.last) - max(first, self.first)).days + 1)


def parse_cycle(kind: str, name: str) -> Cycle:
    """The cycle of a program of this kind named `name`; a name of another kind of cycle, or
    no cycle at all, is refused with what a name looks like."""
    if kind not in MONTHS:
        raise InvalidInput(f"'{kind}' is not a kind of cycle ({', '.join(MONTHS)})")
    text = name.strip()
    if kind == "quarterly":
        found = _QUARTER.match(text)
        if not found:
            raise InvalidInput(
                f"cycle '{name}': a quarterly program's cycles are named like 2026-Q4"
            )
        year, quarter = int(found.group(1)), int(found.group(2))
        return _cycle(kind, text, year, 3 * quarter - 2)
    found = _MONTH.match(text)
    example = "2026-11" if kind == "monthly" else "2026-11 (its first month)"
    if not found:
        raise InvalidInput(f"cycle '{name}': a {kind} program's cycles are named like {example}")
    year, month = int(found.group(1)), int(found.group(2))
    if not 1 <= month <= 12:
        raise InvalidInput(f"cycle '{name}': {month} is not a month")
    if kind == "bimonthly" and month % 2 == 0:
        raise InvalidInput(
            f"cycle '{name}': a bimonthly cycle starts in an odd month (Jan, Mar, May, Jul, "
            "Sep, Nov)"
        )
    return _cycle(kind, text, year, month)


def cycle_of(kind: str, day: date) -> Cycle:
    """The cycle of this kind that holds `day`."""
    size = MONTHS[kind]
    month = day.month - (day.month - 1) % size
    name = f"{day.year}-Q{(month + 2) // 3}" if kind == "quarterly" else f"{day.year}-{month:02d}"
    return _cycle(kind, name, day.year, month)


def _cycle(kind: str, name: str, year: int, month: int) -> Cycle:
    if not 1900 <= year <= 2999:
        raise InvalidInput(f"cycle '{name}': {year} is not a year a program pays in")
    first = date(year, month, 1)
    end_month = month + MONTHS[kind]
    after = date(year + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1)
    return Cycle(kind, name, first, after - timedelta(days=1))
