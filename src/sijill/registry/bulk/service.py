"""`sijill import`: read, check and write a source in batches of whole households.

Reading and checking run in the calling thread while a writer thread commits the previous
batch, so the database and Python work at the same time. Each batch is one transaction: a crash
or Ctrl-C loses at most the batch in flight, and running the same import again continues where
it stopped, because rows already in the registry are recognised by their source record key.
"""

import contextlib
import csv
import datetime as dt
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from sijill.core.areas import Area, load_areas
from sijill.core.clock import utcnow
from sijill.core.errors import InvalidInput
from sijill.core.files import TABLE_SUFFIXES, count_rows, read_json, read_table
from sijill.core.outgoing import for_terminal, spreadsheet_cell
from sijill.core.settings import Settings
from sijill.identity.national_id import Scheme
from sijill.registry.bulk.batches import ORPHAN_MESSAGE, Batch, flat_batches, paired_batches
from sijill.registry.bulk.mapping import Mapping, load_mapping, unmapped_columns
from sijill.registry.bulk.rejects import REJECT_SCHEMA
from sijill.registry.bulk.validate import Context, check_households, check_persons
from sijill.registry.bulk.writer import BatchCounts, BatchWriter, stamp
from sijill.registry.fields import HOUSEHOLD_KEY, PERSON_KEY
from sijill.security.audit.service import AuditEntry, append_now
from sijill.security.principal import Principal
from sijill.security.roles import Permission

Progress = Callable[[int, int | None], None]
ROW = "_row"


@dataclass
class ImportReport:
    source: str
    households_read: int = 0
    persons_read: int = 0
    counts: BatchCounts = field(default_factory=BatchCounts)
    rejected_rows: int = 0
    rejects_path: Path | None = None
    ignored_columns: list[str] = field(default_factory=list)
    batches_committed: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def flags_raised(self) -> int:
        """Pairs flagged for review: a person given a national ID another person holds.
        Never shown to whoever imports (job outcome, command output): for a registrar of a
        district it would tell that the number is held outside their areas."""
        return len(self.counts.flag_ids)


@dataclass
class Plan:
    source: str
    households: Path
    persons: Path | None  # None: one flat list
    areas: Path | None
    mapping: Mapping


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in (".parquet", ".csv", ".xlsx"):
        if (folder / f"{stem}{suffix}").exists():
            return folder / f"{stem}{suffix}"
    return None


def plan_import(path: Path, mapping_path: Path | None, source: str | None) -> Plan:
    if not path.exists():
        raise InvalidInput(f"{path}: no such file or folder")
    mapping = load_mapping(mapping_path) if mapping_path else Mapping()
    if path.is_dir():
        households, persons = _find(path, "households"), _find(path, "persons")
        if households is None or persons is None:
            raise InvalidInput(
                f"{path}: a folder to import holds households.parquet (or .csv) and "
                "persons.parquet (or .csv), as `sijill synth` writes them"
            )
        areas = path / "areas.csv" if (path / "areas.csv").exists() else None
        name = source or mapping.source or _folder_source(path)
        return Plan(name, households, persons, areas, mapping)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise InvalidInput(
            f"{path.name}: cannot read '{path.suffix}' files; use CSV, XLSX or Parquet"
        )
    name = source or mapping.source or path.stem
    return Plan(name, path, None, None, mapping)


def _folder_source(folder: Path) -> str:
    manifest = folder / "manifest.json"
    if manifest.exists():
        meta = read_json(manifest)
        if isinstance(meta, dict) and "seed" in meta:
            return f"synth-{meta['seed']}"
    return folder.resolve().name


def _check_header(plan: Plan) -> list[str]:
    """Fail before writing anything when a needed column is missing; return ignored columns."""
    first = next(read_table(plan.households, 1, sheet=plan.mapping.sheet), None)
    if first is None:
        raise InvalidInput(f"{plan.households.name}: the file has no rows")
    header = first.rows.columns
    renamed = {plan.mapping.columns.get(c, c) for c in header} | set(plan.mapping.defaults)
    needed = [HOUSEHOLD_KEY, "area_code"] + ([] if plan.persons else [PERSON_KEY, "relationship"])
    missing = [c for c in needed if c not in renamed]
    if missing:
        raise InvalidInput(
            f"{plan.households.name}: no column for {', '.join(missing)}; name it so in the "
            "file or map one of your columns to it with --mapping"
        )
    if plan.persons is not None:
        persons_first = next(read_table(plan.persons, 1), None)
        person_header = persons_first.rows.columns if persons_first is not None else []
        names = {plan.mapping.columns.get(c, c) for c in person_header}
        lacking = [c for c in (PERSON_KEY, HOUSEHOLD_KEY, "relationship") if c not in names]
        if lacking:
            raise InvalidInput(f"{plan.persons.name}: no column for {', '.join(lacking)}")
        header = header + person_header
    return sorted(set(unmapped_columns(header, plan.mapping)) - {ROW})


def _area_ids(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return dict(session.execute(select(Area.code, Area.id)).all())


def _heads_rule(households: pl.DataFrame, persons: pl.DataFrame) -> pl.DataFrame:
    """Rejects for households that do not have exactly one head among their valid members."""
    heads = persons.group_by(HOUSEHOLD_KEY).agg(
        (pl.col("relationship") == "head").sum().alias("heads")
    )
    checked = households.join(heads, on=HOUSEHOLD_KEY, how="left").with_columns(
        pl.col("heads").fill_null(0)
    )
    bad = checked.filter(pl.col("heads") != 1)
    return bad.select(
        pl.col(ROW).alias("row"),
        pl.col(HOUSEHOLD_KEY).alias("record_key"),
        pl.lit("relationship").alias("field"),
        pl.lit(None, dtype=pl.String).alias("value"),
        pl.when(pl.col("heads") == 0)
        .then(pl.lit("the household has no head among its valid members"))
        .otherwise(pl.format("the household has {} heads; exactly one is needed", pl.col("heads")))
        .alias("message"),
    ).cast(REJECT_SCHEMA)


def _person_side_rejects(persons: pl.DataFrame, lost: pl.DataFrame, message: str):
    return (
        persons.join(lost, on=HOUSEHOLD_KEY, how="semi")
        .select(
            pl.col(ROW).alias("row"),
            pl.col(PERSON_KEY).alias("record_key")
            if PERSON_KEY in persons.columns
            else pl.lit(None),
            pl.lit(HOUSEHOLD_KEY).alias("field"),
            pl.col(HOUSEHOLD_KEY).alias("value"),
            pl.lit(message).alias("message"),
        )
        .cast(REJECT_SCHEMA)
    )


def _unreadable(rejects: pl.DataFrame) -> pl.DataFrame:
    """Lines the reader could not read, as reject lines: the line and its reason, no content."""
    return rejects.select(
        "row",
        pl.lit(None, dtype=pl.String).alias("record_key"),
        pl.lit(None, dtype=pl.String).alias("field"),
        pl.lit(None, dtype=pl.String).alias("value"),
        "message",
    ).cast(REJECT_SCHEMA)


def check_batch(batch: Batch, ctx: Context, source: str):
    """Validated (households, persons) ready to write, and every reject line of the batch."""
    households, household_rejects = check_households(batch.households, ctx)
    persons, person_rejects = check_persons(batch.persons, ctx)
    rejects = [
        _side(household_rejects, "households"),
        _side(person_rejects, "persons"),
        _side(_unreadable(batch.unreadable_households), "households"),
        _side(_unreadable(batch.unreadable_persons), "persons"),
    ]
    if batch.orphans.height:
        orphans = batch.orphans.select(
            pl.col(ROW).alias("row"),
            pl.col(PERSON_KEY).alias("record_key")
            if PERSON_KEY in batch.orphans.columns
            else pl.lit(None),
            pl.lit(HOUSEHOLD_KEY).alias("field"),
            pl.col(HOUSEHOLD_KEY).alias("value"),
            pl.lit(ORPHAN_MESSAGE).alias("message"),
        ).cast(REJECT_SCHEMA)
        rejects.append(_side(orphans, "persons"))
    # Members of a rejected household cannot be placed; a household left without exactly one
    # head cannot be registered. Both are said to the clerk, row by row.
    rejected_keys = batch.households.join(households, on=HOUSEHOLD_KEY, how="anti").select(
        HOUSEHOLD_KEY
    )
    rejects.append(
        _side(
            _person_side_rejects(
                persons, rejected_keys, "its household was rejected (see its row)"
            ),
            "persons",
        )
    )
    persons = persons.join(rejected_keys, on=HOUSEHOLD_KEY, how="anti")
    head_rejects = _heads_rule(households, persons)
    if head_rejects.height:
        rejects.append(_side(head_rejects, "households"))
        headless = head_rejects.select(pl.col("record_key").alias(HOUSEHOLD_KEY))
        rejects.append(
            _side(
                _person_side_rejects(persons, headless, "its household was rejected (see its row)"),
                "persons",
            )
        )
        households = households.join(headless, on=HOUSEHOLD_KEY, how="anti")
        persons = persons.join(headless, on=HOUSEHOLD_KEY, how="anti")
    households = households.with_columns(
        (pl.lit(f"{source}:") + pl.col(HOUSEHOLD_KEY)).alias("source_key")
    )
    start = households.select(HOUSEHOLD_KEY, pl.col("registration_date").alias("start_date"))
    persons = persons.join(start, on=HOUSEHOLD_KEY, how="left").with_columns(
        (pl.lit(f"{source}:") + pl.col(PERSON_KEY)).alias("source_key"),
        (pl.lit(f"{source}:") + pl.col(HOUSEHOLD_KEY)).alias("household_source_key"),
    )
    return households, persons, pl.concat(rejects).sort("side", "row")


def _side(rejects: pl.DataFrame, side: str) -> pl.DataFrame:
    return rejects.select(pl.lit(side).alias("side"), pl.all())


def _rejects_cell(value: object) -> object:
    return spreadsheet_cell(for_terminal(value)) if isinstance(value, str) else value


class _RejectsFile:
    def __init__(self, path: Path):
        self.path = path
        self.rows = 0
        self._handle = None

    def write(self, rejects: pl.DataFrame, plan: Plan) -> None:
        if rejects.height == 0:
            return
        if self._handle is None:
            self._handle = self.path.open("w", newline="", encoding="utf-8-sig")
            self._writer = csv.writer(self._handle)
            self._writer.writerow(["file", "row", "record_key", "field", "value", "message"])
        persons_file = (plan.persons or plan.households).name
        files = {"households": plan.households.name, "persons": persons_file}
        for side, *row in rejects.iter_rows():
            # The agency's own cells are quoted back: shown, never run (core.outgoing).
            self._writer.writerow([files[side], *map(_rejects_cell, row)])
        self._handle.flush()
        # Rows, not reject lines: a row with three errors is one rejected row, and in a flat
        # list a household's row is also a person's row.
        self.rows += rejects.select(pl.col("side").replace_strict(files), "row").n_unique()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def import_path(
    engine: Engine,
    settings: Settings,
    path: Path,
    mapping_path: Path | None = None,
    rejects_path: Path | None = None,
    source: str | None = None,
    principal: Principal | None = None,
    progress: Progress | None = None,
    stage: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    run: str | None = None,
) -> ImportReport:
    """Import a file or synth folder as `principal` (a registrar: only rows in their areas are
    taken; the others are rejected). The areas file of a synth folder is loaded only for a
    user who may manage areas. `stage` hears of the final index build of an initial load.
    `cancelled` is asked before each batch (a job's cancellation): once it says so, the import
    stops as after Ctrl-C, committing the batches in hand, and says it was interrupted. Each
    batch commits with its own audit record, naming `run` (the job) or else the source."""
    principal = principal or Principal.system("import")
    action = Permission.HOUSEHOLD_IMPORT
    principal.require(action)
    actor = principal.username
    # pyarrow's readers catch SIGINT themselves and then pass the same signal on to Python,
    # so one Ctrl-C would arrive twice; Ctrl-C is handled below, between batches, instead.
    pa.enable_signal_handlers(False)
    plan = plan_import(path, mapping_path, source)
    ignored = _check_header(plan)
    if plan.areas is not None and principal.may(Permission.AREAS_MANAGE):
        with Session(engine) as session, session.begin():
            load_areas(session, plan.areas)
    with Session(engine) as session:
        scope = principal.scope(session, action)
    ctx = Context(
        areas={code: i for code, i in _area_ids(engine).items() if scope.allows(i)},
        scheme=Scheme(settings.national_id_scheme),
        date_order=plan.mapping.date_order,
        today=dt.date.today(),
    )
    if not ctx.areas:
        raise InvalidInput("the registry has no areas yet: load them first (sijill areas load)")
    report = ImportReport(source=plan.source, ignored_columns=ignored)
    default_rejects = path / "rejects.csv" if path.is_dir() else path.with_suffix(".rejects.csv")
    rejects_file = _RejectsFile(rejects_path or default_rejects)
    size = settings.import_batch_size
    if plan.persons is not None:
        batches = paired_batches(plan.households, plan.persons, size, plan.mapping)
        total = count_rows(plan.households)
    else:
        batches = flat_batches(plan.households, size, plan.mapping)
        total = None
    started = time.perf_counter()
    now = utcnow()
    ctrl_c = threading.Event()
    pipeline = _WriterThread(
        engine,
        settings.import_initial_load,
        on_indexing=lambda: stage and stage("building the registry's indexes"),
        between_batches=lambda written: _pause_after_batch(
            written, settings.import_pause_after_batch, ctrl_c
        ),
    )
    outcome = "ok"
    number = 0
    try:
        with _stop_on_ctrl_c(ctrl_c) as stop_requested:
            for batch in batches:
                if stop_requested() or (cancelled is not None and cancelled()):
                    raise KeyboardInterrupt
                households, persons, rejects = check_batch(batch, ctx, plan.source)
                report.households_read += batch.households.height
                report.persons_read += batch.persons.height + batch.orphans.height
                rejects_file.write(rejects, plan)
                number += 1
                pipeline.submit(
                    stamp(households, now, actor),
                    stamp(persons, now, actor),
                    _batch_record(principal, run or plan.source, number, batch),
                )
                if progress:
                    progress(report.households_read, total)
        pipeline.finish()
    except KeyboardInterrupt:
        report.interrupted = True
        outcome = "interrupted"  # what it committed stays, each batch with its record
        ctrl_c.set()  # a Ctrl-C once the source was read: it also ends a pause (see below)
        pipeline.finish()
    except BaseException:
        pipeline.abandon()
        outcome = "failed"
        raise
    finally:
        rejects_file.close()
        report.counts = pipeline.counts
        report.batches_committed = pipeline.committed
        report.seconds = time.perf_counter() - started
        # One record for the run: its source, who ran it and how it ended (the batches it
        # committed are in the registry, stamped with the same user and time).
        principal.audit(action, outcome, "import", plan.source[:64])
        append_now(sessionmaker(engine), principal.take_audit())
    report.rejected_rows = rejects_file.rows
    report.rejects_path = rejects_file.path if rejects_file.rows else None
    return report


def _batch_record(
    principal: Principal, run: str, number: int, batch: Batch
) -> Callable[[BatchCounts], AuditEntry]:
    """The audit record of one batch, made from what it added once written: the run, the
    batch's number, the households file's rows it spans and its counts; no row's content."""
    rows = batch.households[ROW] if ROW in batch.households.columns else pl.Series([])
    span = f"r{rows.min()}-{rows.max()}" if rows.len() else "r-"
    action = Permission.HOUSEHOLD_IMPORT

    def record(counts: BatchCounts) -> AuditEntry:
        added = f"+{counts.households_added}h +{counts.persons_added}p"
        if counts.flag_ids:  # the flags themselves say which pairs (source "import")
            added += f" +{len(counts.flag_ids)}f"
        body = f"b{number} {span} {added}"
        return AuditEntry(
            actor=principal.username,
            role=principal.roles_for(action),
            action=f"{action}.batch",
            outcome="ok",
            record_type="import_batch",
            # The column holds 64 characters: the run's name gives way to the counts.
            record_id=f"{run[: 63 - len(body)]} {body}",
            purpose=principal.purpose(action),
            request_id=principal.request_id,
        )

    return record


def _pause_after_batch(written: int, pause_after: int | None, ctrl_c: threading.Event) -> None:
    """SIJILL_IMPORT_PAUSE_AFTER_BATCH=N: once N batches are written (committed; in an initial
    load, sent) and the next one is already in hand, say `paused after batch N` on stderr and
    wait for Ctrl-C (or a kill). This hook is deliberate: it is how the tests interrupt an
    import at a known batch with more to come; a timer or a poll of the database races an
    import that may finish first on a busy machine."""
    if pause_after is not None and written == pause_after:
        print(f"paused after batch {written}", file=sys.stderr, flush=True)
        ctrl_c.wait()


@contextlib.contextmanager
def _stop_on_ctrl_c(requested: threading.Event):
    """Ctrl-C sets `requested`, asking the import to stop after the batch in hand, rather than
    raising wherever the main thread happens to be: inside Polars' native code a
    KeyboardInterrupt can be turned into another error, or lost."""
    if threading.current_thread() is not threading.main_thread():
        yield requested.is_set
        return
    previous = signal.signal(signal.SIGINT, lambda *_: requested.set())
    try:
        yield requested.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


class _WriterThread:
    """Commits batches in order on its own connection while the next batch is being checked
    (an initial load: writes them, and commits them all once its indexes are built)."""

    def __init__(
        self,
        engine: Engine,
        initial_load_allowed: bool = True,
        on_indexing: Callable[[], None] = lambda: None,
        between_batches: Callable[[int], None] = lambda written: None,
    ):
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._on_indexing = on_indexing
        self._between_batches = between_batches
        self.counts = BatchCounts()
        self.committed = 0
        self._thread = threading.Thread(
            target=self._run, args=(engine, initial_load_allowed), daemon=True
        )
        self._thread.start()
        # Fail early on a connection problem (or a registry that cannot be locked), before the
        # source is read.
        self._ready.wait()
        self._raise_if_failed()

    def _run(self, engine: Engine, initial_load_allowed: bool) -> None:
        writer = None
        try:
            writer = BatchWriter(engine, initial_load_allowed)
            self._ready.set()
            written, counts = 0, BatchCounts()
            while True:
                item = self._queue.get()
                if self._stop.is_set():
                    return
                if item is None:
                    break
                self._between_batches(written)  # told how many are written, with one more here
                counts += writer.write(*item)
                written += 1
                if not writer.deferred:
                    self.counts, self.committed = counts, written
            if writer.deferred:
                self._on_indexing()
                counts.flag_ids += writer.finish()
                self.counts, self.committed = counts, written
        except BaseException as error:  # handed to the caller's thread
            self._error = error
        finally:
            self._ready.set()
            if writer is not None:
                writer.close()

    def submit(self, households: pl.DataFrame, persons: pl.DataFrame, audit=None) -> None:
        while True:
            self._raise_if_failed()
            try:
                self._queue.put((households, persons, audit), timeout=0.2)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Let the queued batches commit, then stop."""
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=0.2)
                break
            except queue.Full:
                self._raise_if_failed()
        self._thread.join()
        self._raise_if_failed()

    def abandon(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
