"""Cutting a source into batches of whole households, with bounded memory.

Two layouts: a households file with a persons file listed in the same household order (what
`sijill synth` writes and docs/data-format.md specifies), or one flat list with a row per person
and the household's fields repeated (what agencies usually keep). Either way a batch holds
complete households, so it is committed whole or not at all.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from sijill.core.files import REJECTS, read_table
from sijill.registry.bulk.mapping import Mapping, apply_mapping
from sijill.registry.fields import HOUSEHOLD, HOUSEHOLD_KEY

ROW = "_row"
ORPHAN_MESSAGE = (
    "no household with this household_key comes at this point of the households file "
    "(persons must be listed grouped by household, in the households file's order)"
)


@dataclass
class Batch:
    households: pl.DataFrame
    persons: pl.DataFrame
    orphans: pl.DataFrame  # person rows that belong to no household of the source
    # Lines of the households and persons files that could not be read (core.files rejects).
    unreadable_households: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=REJECTS)
    )
    unreadable_persons: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REJECTS))


class _Unreadable:
    """The rejects a reader found, kept until the batch that reports them is made."""

    def __init__(self):
        self._found: list[pl.DataFrame] = []

    def keep(self, rejects: pl.DataFrame) -> None:
        if rejects.height:
            self._found.append(rejects)

    def take(self) -> pl.DataFrame:
        found, self._found = self._found, []
        return pl.concat(found) if found else pl.DataFrame(schema=REJECTS)

    def __bool__(self) -> bool:
        return bool(self._found)


def _frames(path: Path, rows: int, mapping: Mapping, unreadable: _Unreadable):
    for batch in read_table(path, rows, sheet=mapping.sheet):
        unreadable.keep(batch.rejects)
        yield apply_mapping(batch.rows, mapping)


def _empty_like(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.clear()


def paired_batches(
    households_path: Path, persons_path: Path, size: int, mapping: Mapping
) -> Iterator[Batch]:
    households_unreadable, persons_unreadable = _Unreadable(), _Unreadable()
    household_frames = _frames(households_path, size, mapping, households_unreadable)
    person_frames = _frames(persons_path, size * 5, mapping, persons_unreadable)
    current = next(household_frames, None)
    carry: pl.DataFrame | None = None
    while current is not None:
        upcoming = next(household_frames, None)
        here = current[HOUSEHOLD_KEY].drop_nulls().implode()
        ahead = upcoming[HOUSEHOLD_KEY].drop_nulls().implode() if upcoming is not None else None
        taken, orphans = [], []
        while True:
            if carry is None or carry.height == 0:
                carry = next(person_frames, None)
                if carry is None:
                    break
            key = pl.col(HOUSEHOLD_KEY)
            marks = carry.select(
                key.is_in(here).fill_null(False).alias("here"),
                (key.is_in(ahead).fill_null(False) if ahead is not None else pl.lit(False)).alias(
                    "ahead"
                ),
            )
            belongs_later = marks["ahead"] & ~marks["here"]
            stop = belongs_later.arg_true()
            cut = int(stop[0]) if stop.len() else carry.height
            head, carry = carry.slice(0, cut), carry.slice(cut)
            head_here = marks["here"].slice(0, cut)
            taken.append(head.filter(head_here))
            orphans.append(head.filter(~head_here))
            if stop.len():
                break
        template = carry if carry is not None else None
        yield Batch(
            households=current,
            persons=pl.concat(taken) if taken else _empty(template),
            orphans=pl.concat(orphans) if orphans else _empty(template),
            unreadable_households=households_unreadable.take(),
            unreadable_persons=persons_unreadable.take(),
        )
        current = upcoming
    # Lines the readers rejected after the last household (or in a file without any).
    for _ in person_frames:
        pass
    if households_unreadable or persons_unreadable:
        empty = _empty(None)
        yield Batch(
            empty,
            empty,
            empty,
            households_unreadable.take(),
            persons_unreadable.take(),
        )


def _empty(template: pl.DataFrame | None) -> pl.DataFrame:
    if template is None:
        return pl.DataFrame(
            {ROW: [], HOUSEHOLD_KEY: []}, schema={ROW: pl.Int64, HOUSEHOLD_KEY: pl.String}
        )
    return template.clear()


def flat_batches(path: Path, size: int, mapping: Mapping) -> Iterator[Batch]:
    """One row per person; rows of a household are contiguous. Household fields are taken
    from the household's first row."""
    carry: pl.DataFrame | None = None
    unreadable = _Unreadable()
    for frame in _frames(path, size * 5, mapping, unreadable):
        if carry is not None and carry.height:
            frame = pl.concat([carry, frame], how="diagonal_relaxed")
        # The last household may continue in the next chunk: hold it back.
        last_key = frame[HOUSEHOLD_KEY][-1] if frame.height else None
        tail = frame.select((pl.col(HOUSEHOLD_KEY) == last_key).fill_null(False).alias("t"))["t"]
        boundary = _trailing_run_start(tail)
        carry, frame = frame.slice(boundary), frame.slice(0, boundary)
        if frame.height or unreadable:
            yield _split_flat(frame, unreadable.take())
    if (carry is not None and carry.height) or unreadable:
        yield _split_flat(carry if carry is not None else _empty(None), unreadable.take())


def _trailing_run_start(flags: pl.Series) -> int:
    """Index where the final run of True values starts (len if the last value is False)."""
    if flags.len() == 0 or not flags[-1]:
        return flags.len()
    falses = (~flags).arg_true()
    return int(falses[-1]) + 1 if falses.len() else 0


def _split_flat(frame: pl.DataFrame, unreadable: pl.DataFrame) -> Batch:
    household_columns = [c for c in frame.columns if c in HOUSEHOLD.exchange or c == ROW]
    households = (
        frame.filter(pl.col(HOUSEHOLD_KEY).is_not_null())
        .unique(HOUSEHOLD_KEY, keep="first", maintain_order=True)
        .select(household_columns)
    )
    return Batch(households, frame, frame.clear(), unreadable_households=unreadable)
