"""Walk the audit chain and name the first record that was altered, deleted or inserted.

The chain arrives in chunks of records in seq order (`audit_chunks`); DuckDB recomputes each
chunk's hashes at once, and whole-column comparisons check that each record follows the one
before it, carried across chunks. Memory stays bounded by the chunk size whatever the chain's
length. Everything is read in one snapshot, so appends made while verifying neither break nor
extend what is checked.
"""

from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine, inspect

from sijill.core.db import make_engine
from sijill.core.errors import SijillError
from sijill.security.audit.chunks import ChainReader, open_reader
from sijill.security.audit.models import GENESIS_HASH, HASH_SQL

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int  # records found intact before the first problem (all of them when ok)
    head_seq: int | None  # what audit_head says: the last record's seq ...
    head_hash: str | None  # ... and its hash (worth copying outside the database)
    bad_seq: int | None = None  # the first record that is wrong, missing or out of place
    kind: str | None = None  # altered, missing, inserted, out_of_order, truncated, ...
    problem: str | None = None  # in words an auditor understands
    repaired: tuple[tuple[int, int], ...] = ()  # ranges set aside by repairs, skipped
    quarantined: int = 0  # sign-ins recorded while the chain was broken, not yet in it

    def summary(self) -> str:
        notes = ""
        if self.repaired:
            ranges = ", ".join(_range(first, last) for first, last in self.repaired)
            notes += f"; set aside by repairs: {ranges}"
        if self.quarantined:
            notes += f"; {self.quarantined:,} records in quarantine"
        if self.ok:
            return (
                f"audit chain intact: {self.checked:,} records, last hash {self.head_hash}" + notes
            )
        return (
            f"audit chain broken: {self.problem} ({self.checked:,} records intact before it)"
            + notes
        )


def _range(first: int, last: int) -> str:
    return f"record {first}" if first == last else f"records {first}..{last}"


@dataclass(frozen=True)
class _Problem:
    seq: int
    kind: str
    words: str


def parse_anchor(anchor: str) -> tuple[int, str]:
    """`SEQ:HASH`, as printed by `sijill audit verify` and kept outside the database."""
    seq, _, digest = anchor.partition(":")
    digest = digest.strip().lower()
    if not seq.strip().isdigit() or len(digest) != 64 or set(digest) - set("0123456789abcdef"):
        raise ValueError(f"an anchor is SEQ:HASH (a record number and 64 hex digits): {anchor!r}")
    return int(seq), digest


def verify(
    engine_or_url: Engine | str,
    *,
    progress: Progress | None = None,
    chunk_rows: int = 250_000,
    anchors: Sequence[tuple[int, str]] = (),
) -> VerifyReport:
    """ok / first bad record (seq) and what is wrong with it, in words an auditor understands.

    `anchors` are (seq, hash) pairs copied out of the database earlier: a chain rewritten
    consistently by someone with owner rights still fails on them. A quarter of a million
    records a chunk verifies as fast as a million in a third of the memory (BENCHMARKS.md).
    """
    own_engine = isinstance(engine_or_url, str)
    engine = make_engine(engine_or_url) if own_engine else engine_or_url
    try:
        if not all(inspect(engine).has_table(name) for name in ("audit_record", "audit_head")):
            raise SijillError("This database has no audit chain: run `sijill db upgrade` first.")
        with open_reader(engine) as reader:
            return _walk(reader, progress, chunk_rows, dict(anchors))
    finally:
        if own_engine:
            engine.dispose()


def _walk(reader: ChainReader, progress, chunk_rows: int, anchors: dict[int, str]) -> VerifyReport:
    head = reader.head()
    head_seq, head_hash = head if head else (None, None)
    repairs = reader.repairs()
    notes = {
        "repaired": tuple((first, last) for first, last, _ in repairs),
        "quarantined": reader.quarantined(),
    }

    def broken(seq: int, kind: str, words: str) -> VerifyReport:
        # Every record before the first problem was read and found intact.
        checked = max(seq - 1, 0) - sum(
            min(last, seq - 1) - max(first, 1) + 1 for first, last, _ in repairs if first < seq
        )
        return VerifyReport(False, max(checked, 0), head_seq, head_hash, seq, kind, words, **notes)

    if head is None:
        return broken(0, "head_missing", "the chain's head row (audit_head) is missing")
    if anchors.pop(0, GENESIS_HASH) != GENESIS_HASH:  # "0:HASH" is printed for an empty chain
        return broken(0, "anchor", "the anchor for record 0 is not the chain's starting hash")
    for seq in reader.duplicated():
        if not any(first <= seq <= last for first, last, _ in repairs):
            words = f"record {seq} was written twice: the chain's primary key was removed"
            return broken(seq, "duplicate", words)
    total = max(head_seq, reader.max_seq())
    # Imported here: every command imports this module, few verify, and DuckDB takes 0.15 s.
    import duckdb

    checks = duckdb.connect()
    done = 0
    last_seq, last_hash = 0, GENESIS_HASH
    pending = list(repairs)

    def check(piece: pa.Table) -> _Problem | None:
        nonlocal last_seq, last_hash, done
        found = _first_bad(checks, piece, last_seq, last_hash, head_seq)
        problem = None
        if found:
            reader.stop()
            problem = _diagnose(reader, found, head_seq)
        problem = _anchor_problem(piece, anchors, problem) or problem
        if problem is None:
            done += piece.num_rows
            last_seq = piece["seq"][-1].as_py()
            last_hash = piece["hash"][-1].as_py()
        return problem

    def skip(first: int, last: int, resume: str) -> _Problem | None:
        # A repaired range: what lies before it must reach it without a gap.
        nonlocal last_seq, last_hash
        if last_seq + 1 < first:
            missing = _span(last_seq + 1, first - 1)
            return _Problem(last_seq + 1, "missing", f"{missing} missing (deleted)")
        last_seq, last_hash = last, resume
        pending.pop(0)
        return None

    with closing(reader.chunks(chunk_rows)) as chunks:
        for chunk in chunks:
            rows = chunk
            while rows.num_rows:
                if not pending or pending[0][0] > rows["seq"][-1].as_py():
                    problem = check(rows)
                    rows = rows.slice(0, 0)
                else:
                    first, last, resume = pending[0]
                    seqs = rows["seq"]
                    before = rows.filter(pc.less(seqs, first))
                    after = rows.filter(pc.greater(seqs, last))
                    problem = check(before) if before.num_rows else None
                    if problem is None and after.num_rows:
                        problem = skip(first, last, resume)
                    rows = after
                if problem is not None:
                    return broken(problem.seq, problem.kind, problem.words)
            if progress:
                progress(done, total)
    if progress and done == 0:
        progress(done, total)
    while pending:  # a repaired range at the very end
        problem = skip(*pending[0])
        if problem is not None:
            return broken(problem.seq, problem.kind, problem.words)
    if last_seq < head_seq:
        missing = _span(last_seq + 1, head_seq)
        words = f"the chain was truncated after record {last_seq}: {missing} missing"
        return broken(last_seq + 1, "truncated", words)
    if last_hash != head_hash:
        words = (
            f"record {last_seq} does not match the chain's head: the last record was "
            "replaced, or the head was altered"
        )
        return broken(last_seq, "head_mismatch", words)
    if anchors:  # an anchor beyond the end: the chain was rewritten shorter than it was
        seq = min(anchors)
        words = (
            f"record {seq}, whose hash was kept outside the database, no longer exists: "
            "the chain was rewritten"
        )
        return broken(seq, "anchor", words)
    return VerifyReport(True, done, head_seq, head_hash, **notes)


def _first_bad(checks, chunk: pa.Table, last_seq: int, last_hash: str, head_seq: int):
    """The first record of the chunk (in seq order) that does not hash to its own hash, does
    not follow the record before it, or lies beyond the head; None if there is none.

    Only the hashing runs in DuckDB (in parallel); the comparisons are whole-column Arrow and
    NumPy operations on the chunk, which arrives sorted by seq.
    """
    checks.register("chunk", chunk)
    hashed = checks.sql(f"SELECT seq, {HASH_SQL} AS computed FROM chunk").to_arrow_table()
    checks.unregister("chunk")
    seq = chunk["seq"].to_numpy()
    if not np.array_equal(hashed["seq"].to_numpy(), seq):
        raise RuntimeError("DuckDB returned the chunk's records in another order")
    stored = chunk["hash"]
    content_ok = pc.fill_null(pc.equal(hashed["computed"], stored), False).to_numpy(
        zero_copy_only=False
    )
    before_hash = pa.concat_arrays(
        [pa.array([last_hash], pa.string()), stored.slice(0, len(stored) - 1).combine_chunks()]
    )
    linked = pc.fill_null(pc.equal(chunk["prev_hash"], before_hash), False).to_numpy(
        zero_copy_only=False
    )
    expected = np.arange(last_seq + 1, last_seq + 1 + len(seq), dtype=np.int64)
    bad = ~content_ok | ~linked | (seq != expected) | (seq > head_seq)
    if not bad.any():
        return None
    i = int(bad.argmax())  # every record before i is contiguous, so it follows expected[i] - 1
    return (
        int(seq[i]),
        bool(content_ok[i]),
        int(expected[i]) - 1,
        before_hash[i].as_py(),
        chunk["prev_hash"][i].as_py(),
    )


def _anchor_problem(chunk: pa.Table, anchors: dict[int, str], found: "_Problem | None"):
    """The first anchor up to this chunk's end, and before the chain's own first problem,
    whose record no longer has the hash kept outside. Checked anchors leave `anchors`."""
    if not anchors:
        return None
    last = chunk["seq"][-1].as_py()
    inside = sorted(seq for seq in anchors if seq <= last)
    if not inside:
        return None
    stored = dict(zip(chunk["seq"].to_pylist(), chunk["hash"].to_pylist(), strict=True))
    for seq in inside:
        if found is not None and seq >= found.seq:
            return None
        kept = anchors.pop(seq)
        if stored.get(seq) != kept:
            what = "no longer has the hash" if seq in stored else "no longer exists, with hash"
            return _Problem(
                seq,
                "anchor",
                f"record {seq} {what} kept outside the database "
                f"({kept[:16]}…): the chain was rewritten from there or earlier",
            )
    return None


def _span(first: int, last: int) -> str:
    return f"record {first} is" if first == last else f"records {first}..{last} are"


def _diagnose(reader: ChainReader, row: tuple, head_seq: int) -> _Problem:
    """Why the first failing record fails: the fast scan says where, this says what."""
    seq, content_ok, before_seq, before_hash, prev_hash = row
    if seq == before_seq and seq >= 1:
        return _Problem(seq, "duplicate", f"record {seq} was written twice")
    if seq <= before_seq:  # only the first record can be below the chain's start
        return _Problem(
            seq,
            "inserted",
            f"record {seq} was inserted before the chain's "
            "first record (records are numbered from 1)",
        )
    if seq != before_seq + 1:
        if before_seq >= head_seq:
            return _outside(seq, head_seq)
        missing = _span(before_seq + 1, min(seq - 1, head_seq))
        return _Problem(before_seq + 1, "missing", f"{missing} missing (deleted)")
    if seq > head_seq:
        return _outside(seq, head_seq)
    if prev_hash == before_hash:
        return _Problem(
            seq, "altered", f"record {seq} was altered: its content no longer matches its hash"
        )
    if seq >= 2 and prev_hash == (GENESIS_HASH if seq == 2 else reader.hash_at(seq - 2)):
        return _Problem(
            seq - 1,
            "inserted",
            f"record {seq - 1} was inserted into the chain: "
            f"record {seq} was chained directly to record {seq - 2}",
        )
    follows = reader.seq_with_hash(prev_hash, excluding=seq - 1)
    if follows is not None:
        return _Problem(
            seq,
            "out_of_order",
            f"record {seq} is out of order: it was written "
            f"after the record now numbered {follows}, not after record {seq - 1}",
        )
    if content_ok:
        return _Problem(
            seq - 1,
            "replaced",
            f"record {seq - 1} was replaced (its hash "
            f"recomputed): record {seq} was chained to a different record {seq - 1}",
        )
    return _Problem(
        seq,
        "altered",
        f"record {seq} was altered or forged: its content no longer "
        f"matches its hash and it does not follow record {seq - 1}",
    )


def _outside(seq: int, head_seq: int) -> _Problem:
    return _Problem(
        seq,
        "outside",
        f"record {seq} was written outside the chain: the chain's head ends at record {head_seq}",
    )
