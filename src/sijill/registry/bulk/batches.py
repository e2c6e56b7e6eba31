"""Cutting a source into batches of whole households, with bounded memory.

Two layouts: a households file with a persons file listed in the same household order (what
`sijill synth` writes and docs/data-format.md specifies), or one flat list with a row per person
and the household's fields repeated (what agencies usually keep). Either way a batch holds
complete households, so it is committed whole or not at all.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from sijill.registry.bulk.mapping import Mapping, apply_mapping
from sijill.registry.bulk.sources import read_batches
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


def _frames(path: Path, rows: int, mapping: Mapping) -> Iterator[pl.DataFrame]:
    for frame in read_batches(path, rows, sheet=mapping.sheet):
        yield apply_mapping(frame, mapping)


def _empty_like(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.clear()


def paired_batches(
    households_path: Path, persons_path: Path, size: int, mapping: Mapping
) -> Iterator[Batch]:
    household_frames = _frames(households_path, size, mapping)
    person_frames = _frames(persons_path, size * 5, mapping)
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
        )
        current = upcoming


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
    for frame in _frames(path, size * 5, mapping):
        if carry is not None and carry.height:
            frame = pl.concat([carry, frame], how="diagonal_relaxed")
        # The last household may continue in the next chunk: hold it back.
        last_key = frame[HOUSEHOLD_KEY][-1] if frame.height else None
        tail = frame.select((pl.col(HOUSEHOLD_KEY) == last_key).fill_null(False).alias("t"))["t"]
        boundary = _trailing_run_start(tail)
        carry, frame = frame.slice(boundary), frame.slice(0, boundary)
        if frame.height:
            yield _split_flat(frame)
    if carry is not None and carry.height:
        yield _split_flat(carry)


def _trailing_run_start(flags: pl.Series) -> int:
    """Index where the final run of True values starts (len if the last value is False)."""
    if flags.len() == 0 or not flags[-1]:
        return flags.len()
    falses = (~flags).arg_true()
    return int(falses[-1]) + 1 if falses.len() else 0


def _split_flat(frame: pl.DataFrame) -> Batch:
    household_columns = [c for c in frame.columns if c in HOUSEHOLD.exchange or c == ROW]
    households = (
        frame.filter(pl.col(HOUSEHOLD_KEY).is_not_null())
        .unique(HOUSEHOLD_KEY, keep="first", maintain_order=True)
        .select(household_columns)
    )
    return Batch(households=households, persons=frame, orphans=frame.clear())
