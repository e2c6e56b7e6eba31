"""The initial load of an empty registry on PostgreSQL: one transaction, indexes built at the end.

Loading millions of rows into tables whose indexes are kept up to date row by row is mostly
random B-tree inserts and per-row foreign-key lookups; building the same indexes once from the
loaded rows (a sort) and checking each foreign key with one join is several times cheaper. That
is what `pg_restore` does, and what an import into an empty registry does here:

- the registry tables are locked and found empty, their indexes and key constraints (and the
  foreign keys other tables hold on them) are dropped, all in the import's transaction;
- batches are copied in without per-batch commits; the database's unique keys are not there to
  catch a repeated record key or a colliding random registry ID, so this module keeps what the
  load has seen (8 bytes per ID and per record key) and the writer checks against it;
- at the end the indexes and constraints are created again from the definitions read from the
  catalogue, the tables analysed, and everything committed at once.

A crash or kill leaves the registry as it was (empty, with every index: DDL is transactional
in PostgreSQL); Ctrl-C stops after the batch in hand and commits what was loaded. Other sessions
wait on the lock until the commit, which is why this is only done to an empty registry.
"""

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from sijill.core.ids import new_ids

REGISTRY_TABLES = ("household", "person", "membership")
_KEY_HASH_SEED = 0x5EED
_NO_HOLDERS = pl.DataFrame(
    schema={
        "index_high": pl.UInt64,
        "index_low": pl.UInt64,
        "person_id": pl.Int64,
        "household_id": pl.Int64,
    }
)


class Seen:
    """A set of 64-bit values: a bitmap of hashed slots answers "certainly not seen" for most
    lookups; the rest are searched exactly in sorted runs, merged as they grow (a
    log-structured set). 16 MB of bitmap plus 8 bytes a value."""

    _SLOT_BITS = 27

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []
        self._bitmap = np.zeros((1 << self._SLOT_BITS) // 8, dtype=np.uint8)

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def _slots(self, values: np.ndarray) -> np.ndarray:
        # Fibonacci hashing: the top bits of value × 2^64/φ spread any values over the slots.
        spread = values.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        return spread >> np.uint64(64 - self._SLOT_BITS)

    def contains(self, values: np.ndarray) -> np.ndarray:
        slots = self._slots(values)
        maybe = (self._bitmap[slots >> np.uint64(3)] >> (slots & np.uint64(7)).astype(np.uint8)) & 1
        found = np.zeros(len(values), dtype=bool)
        candidates = np.flatnonzero(maybe)
        if not candidates.size:
            return found
        # Searching for the candidates in order keeps each binary search near the last one's
        # end (numpy narrows from the previous key): cache-friendly on runs of millions.
        order = np.argsort(values[candidates], kind="stable")
        wanted = values[candidates][order]
        hit = np.zeros(len(wanted), dtype=bool)
        for run in self._runs:
            at = np.minimum(np.searchsorted(run, wanted), len(run) - 1)
            hit |= run[at] == wanted
        found[candidates[order]] = hit
        return found

    def add(self, values: np.ndarray) -> None:
        slots = self._slots(values)
        bits = np.left_shift(1, (slots & np.uint64(7)).astype(np.uint8)).astype(np.uint8)
        np.bitwise_or.at(self._bitmap, slots >> np.uint64(3), bits)
        run = np.sort(values)
        # Runs of equal size merge, as a binary counter carries: log2(batches) runs at most,
        # each value merged log2(batches) times. A stable sort of two sorted runs is a merge.
        while self._runs and len(self._runs[-1]) <= len(run):
            run = np.sort(np.concatenate([self._runs.pop(), run]), kind="stable")
        self._runs.append(run)


def key_hashes(keys: pl.Series) -> np.ndarray:
    return keys.hash(seed=_KEY_HASH_SEED).to_numpy()


@dataclass
class Deferred:
    """What was dropped, as the statements that create it again, in a workable order."""

    keys: list[str] = field(default_factory=list)  # primary keys and unique constraints
    indexes: list[str] = field(default_factory=list)
    foreign_keys: list[str] = field(default_factory=list)
    drops: list[str] = field(default_factory=list)


@dataclass
class InitialLoad:
    deferred: Deferred
    ids: dict[str, Seen] = field(default_factory=lambda: {"household": Seen(), "person": Seen()})
    keys: dict[str, Seen] = field(default_factory=lambda: {"household": Seen(), "person": Seen()})
    # Each batch's holders of a national ID number (`reviews.flags.index_holders`), paired
    # at the end: the registry was empty, so every shared number is one this load brought.
    holders: list[pl.DataFrame] = field(default_factory=list)

    def number_holders(self) -> pl.DataFrame:
        return pl.concat(self.holders, rechunk=True) if self.holders else _NO_HOLDERS

    def fresh_ids(self, kind: str, count: int, draw=new_ids) -> np.ndarray:
        """`count` new registry IDs, none already drawn by this load (the registry was empty)."""
        ids = draw(kind, count)
        for _ in range(100):
            taken = self.ids[kind].contains(ids)
            if not taken.any():
                self.ids[kind].add(ids)
                return ids
            replacements = draw(kind, int(taken.sum()))
            candidate = ids.copy()
            candidate[taken] = replacements
            if len(np.unique(candidate)) == len(candidate):
                ids = candidate
        raise RuntimeError(f"could not draw free registry IDs for {kind} rows")

    def maybe_seen(self, kind: str, keys: pl.Series) -> tuple[np.ndarray, np.ndarray]:
        """(hashes of `keys`, mask of those an earlier batch may have held): a mask hit is
        confirmed against the rows themselves, since two keys can share a hash."""
        hashes = key_hashes(keys)
        return hashes, self.keys[kind].contains(hashes)


def begin(connection) -> InitialLoad | None:
    """Start the initial load in `connection`'s transaction, or None (and nothing held) when
    the registry already has rows."""
    cursor = connection.cursor()
    tables = ", ".join(REGISTRY_TABLES)
    cursor.execute(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE")
    cursor.execute(
        "SELECT " + " OR ".join(f"EXISTS (SELECT 1 FROM {table})" for table in REGISTRY_TABLES)
    )
    if cursor.fetchone()[0]:
        connection.rollback()
        return None
    deferred = _read_definitions(cursor)
    for statement in deferred.drops:
        cursor.execute(statement)
    # Emptied in this transaction (they are empty, and no key points at them now), the tables
    # take `COPY ... FREEZE`: rows written frozen and pages marked all-visible, so the first
    # reads and vacuums after the load do not rewrite every page to set hint bits.
    cursor.execute(f"TRUNCATE {tables}")
    return InitialLoad(deferred)


def _read_definitions(cursor) -> Deferred:
    deferred = Deferred()
    registry = "ARRAY[" + ", ".join(f"'{t}'::regclass" for t in REGISTRY_TABLES) + "]"
    cursor.execute(
        "SELECT c.conrelid::regclass::text, quote_ident(c.conname), c.contype, "
        "pg_get_constraintdef(c.oid) FROM pg_constraint c "
        f"WHERE (c.conrelid = ANY({registry}) AND c.contype IN ('p', 'u', 'x', 'f')) "
        f"OR (c.confrelid = ANY({registry}) AND c.contype = 'f') ORDER BY c.oid"
    )
    constraints = cursor.fetchall()
    foreign = [row for row in constraints if row[2] == "f"]
    keys = [row for row in constraints if row[2] != "f"]
    # Foreign keys first: a primary key cannot go while another table's key points at it.
    for table, name, _, _ in foreign + keys:
        deferred.drops.append(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    deferred.keys = [f"ALTER TABLE {t} ADD CONSTRAINT {n} {d}" for t, n, _, d in keys]
    deferred.foreign_keys = [f"ALTER TABLE {t} ADD CONSTRAINT {n} {d}" for t, n, _, d in foreign]
    cursor.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        f"WHERE i.indrelid = ANY({registry}) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
        "WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid) ORDER BY i.indexrelid"
    )
    for name, definition in cursor.fetchall():
        deferred.drops.append(f"DROP INDEX {name}")
        deferred.indexes.append(definition)
    return deferred


def finish(cursor, load: InitialLoad) -> None:
    """Create the indexes and constraints again (checking every row against them) and gather
    the planner's statistics; the caller commits."""
    # The sorts that build the indexes are the heavy part; give them room for this transaction.
    cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
    for statement in load.deferred.keys + load.deferred.indexes + load.deferred.foreign_keys:
        cursor.execute(statement)
    cursor.execute(f"ANALYZE {', '.join(REGISTRY_TABLES)}")
