"""`sijill link --against FILE --kind ...`: another agency's list matched to registry persons.

The list is read and checked (`linkage.lists`), the registry's persons read in bulk
(`linkage.extract`), both keyed (`features.match_frame`) and scored across (`scoring.score`,
link_only). Each line gets its best registry person at or above the threshold, or none:

- best is the highest match weight (the probability saturates near 1, the weight does not);
- a tie is not broken by a guess: when two registry persons share the line's best weight, the
  line is reported "ambiguous" and changes nothing (a death set on the wrong twin is worse than
  one a clerk settles by hand).

Matched lines become events (`linkage.events`); unmatched ones, and lines that cannot be read,
are never dropped: they go to a report next to the list (`LIST.unmatched.csv`), each with its
line and reason, and are counted. Everything the run writes to the registry is one
transaction, and the report is put in place only once it has committed: a failed run leaves
neither half.

Without a saved model, one is trained on the registry itself (dedup settings: the m of true
pairs and the u of random pairs are the registry's own) and then scores the list; its prior is
the registry's, which on a list is conservative.
"""

import csv
import datetime as dt
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from splink import DuckDBAPI, Linker
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.errors import Forbidden, InvalidInput
from sijill.core.files import ROW
from sijill.core.outgoing import for_terminal, spreadsheet_cell
from sijill.core.settings import Settings
from sijill.identity.national_id import Scheme
from sijill.linkage import model as linkage_model
from sijill.linkage.dedup import RUN_RECORD, keep_model
from sijill.linkage.events import Events, record
from sijill.linkage.extract import registry_persons
from sijill.linkage.features import match_frame
from sijill.linkage.lists import REPORT, read_list
from sijill.linkage.models import LINK, LinkageRun
from sijill.linkage.scoring import MIN_TRAINING_RECORDS, score
from sijill.registry.reviews.service import ACTION_RAISE, RECORD_TYPE
from sijill.security.audit.service import append
from sijill.security.principal import Principal
from sijill.security.roles import Permission

ACTION = "linkage.link"


@dataclass
class LinkReport:
    run_id: int
    model_version: str
    kind: str
    list_file: str
    lines: int
    matched: int
    unmatched: int  # no match at or above the threshold, or a tie
    rejected: int  # lines that could not be read
    deaths_recorded: int
    deaths_already_recorded: int
    facts_added: int
    facts_present: int
    flags_raised: int
    report_path: str | None
    seconds: float


def require_national(session: Session, principal: Principal) -> None:
    if not principal.scope(session, Permission.LINKAGE_RUN).national:
        raise Forbidden(
            "Linking against an outside list needs a scope over the whole country: its "
            "persons may live anywhere"
        )


def may_link(session: Session, principal: Principal) -> None:
    """Whether the user may start a link run (the route's and the page's check): the
    permission over the whole country, or Forbidden, audited."""
    principal.require(Permission.LINKAGE_RUN)
    try:
        require_national(session, principal)
    except Forbidden:
        principal.audit(ACTION, "denied", "linkage_run", None, permission=Permission.LINKAGE_RUN)
        raise


def _train_on_registry(frame: pl.DataFrame, u_pairs: int) -> dict[str, Any]:
    if frame.height < MIN_TRAINING_RECORDS:
        raise InvalidInput(
            f"the registry's {frame.height:,} persons are too few to train a linkage model "
            f"(at least {MIN_TRAINING_RECORDS:,}): pass a saved model with --model"
        )
    table = DuckDBAPI().register(frame.to_arrow(), table_name="records_0")
    linker = Linker(table, linkage_model.settings("dedupe_only"), log_level=logging.WARNING)
    linkage_model.train(linker, u_pairs=u_pairs)
    return linkage_model.artifact(linker.misc.save_model_to_json(), records=frame.height)


def best_matches(pairs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the best registry person of each line, lines whose best is shared by two or more).
    In `pairs` the list's side is the negative ID (`linkage.lists`)."""
    scored = pairs.select(
        (-pl.col("person_a_id")).alias(ROW),
        pl.col("person_b_id").alias("person_id"),
        "match_weight",
        "match_probability",
    )
    top = scored.filter(pl.col("match_weight") == pl.col("match_weight").max().over(ROW))
    tied = top.filter(pl.len().over(ROW) > 1).group_by(ROW).agg(pl.len().alias("tied"))
    return top.join(tied, on=ROW, how="anti"), tied


def run_link(
    engine: Engine,
    settings: Settings,
    *,
    principal: Principal,
    path: Path,
    kind: str,
    list_name: str | None = None,
    mapping: Path | None = None,
    model: dict[str, Any] | None = None,
    threshold: float | None = None,
    as_of: dt.date | None = None,
    report_path: Path | None = None,
    job_id: int | None = None,
    stage: Callable[[str], None] = lambda _: None,
) -> LinkReport:
    """Link the list at `path` (named `list_name` in the records: its file name by default)."""
    started, began = clock.utcnow(), time.perf_counter()
    threshold = settings.linkage_review_threshold if threshold is None else threshold
    list_name = list_name or path.name
    with Session(engine) as session:
        require_national(session, principal)
    stage("reading the list")
    today = dt.date.today()
    listed = read_list(
        path,
        kind,
        mapping_path=mapping,
        scheme=Scheme(settings.national_id_scheme),
        today=today,
    )
    stage("reading the registry")
    registry = match_frame(registry_persons(engine, work_dir=settings.work_dir))
    if model is None:
        stage("training the model")
        model = _train_on_registry(registry, settings.linkage_u_pairs)
    matched = pl.DataFrame(schema={ROW: pl.Int64, "person_id": pl.Int64})
    tied = pl.DataFrame(schema={ROW: pl.Int64, "tied": pl.UInt32})
    if listed.persons.height:
        stage("computing match keys")
        frame = match_frame(listed.persons)
        scored = score(
            [registry, frame],
            threshold=threshold,
            u_pairs=settings.linkage_u_pairs,
            model=model,
            stage=stage,
        )
        best, tied = best_matches(scored.pairs)
        matched = best.join(listed.persons, on=ROW, how="left")
    unmatched = _unmatched(listed, matched, tied, threshold)
    report_path = report_path or path.with_suffix(".unmatched.csv")
    # Written beside its place now, put in place once the transaction has committed.
    pending = _write_report(unmatched, list_name, report_path) if unmatched.height else None
    stage("recording the events")
    try:
        run_id, events = _record(
            engine,
            principal,
            kind,
            list_name,
            model,
            matched,
            listed.lines,
            threshold,
            started=started,
            as_of=as_of or today,
            job_id=job_id,
        )
    except BaseException:
        if pending is not None:
            pending.unlink(missing_ok=True)
        raise
    if pending is not None:
        os.replace(pending, report_path)
    elif report_path.is_file():
        report_path.unlink()  # an earlier run's report would speak of lines now matched
    rejected = int(listed.rejects["row"].n_unique())
    return LinkReport(
        run_id=run_id,
        model_version=model["version"],
        kind=kind,
        list_file=list_name,
        lines=listed.lines,
        matched=matched.height,
        unmatched=unmatched.height - rejected,
        rejected=rejected,
        deaths_recorded=events.deaths_recorded,
        deaths_already_recorded=events.deaths_already_recorded,
        facts_added=events.facts_added,
        facts_present=events.facts_present,
        flags_raised=len(events.flag_ids),
        report_path=str(report_path) if pending is not None else None,
        seconds=time.perf_counter() - began,
    )


def _record(
    engine: Engine,
    principal: Principal,
    kind: str,
    list_name: str,
    model: dict[str, Any],
    matched: pl.DataFrame,
    lines: int,
    threshold: float,
    *,
    started: dt.datetime,
    as_of: dt.date,
    job_id: int | None,
) -> tuple[int, Events]:
    """The run, its matched lines and their events, and the audit records: one transaction."""
    with Session(engine) as session, session.begin():
        run = LinkageRun(
            kind=LINK,
            model_version=keep_model(session, model),
            area_id=None,
            job_id=job_id,
            run_by=principal.username,
            started_at=started,
            records=lines,
            review_threshold=threshold,
        )
        session.add(run)
        session.flush()
        events = record(
            session,
            principal,
            run_id=run.id,
            kind=kind,
            list_file=list_name,
            model_version=model["version"],
            matched=matched,
            as_of=as_of,
            now=started,
        )
        run.pairs_proposed = matched.height
        run.flags_raised = len(events.flag_ids)
        run.finished_at = clock.utcnow()
        principal.audit(ACTION, "ok", RUN_RECORD, str(run.id), permission=Permission.LINKAGE_RUN)
        if ids := events.flag_ids:
            principal.audit(
                ACTION_RAISE,
                "ok",
                RECORD_TYPE,
                f"{len(ids)} flags {ids[0]}-{ids[-1]}",
                permission=Permission.LINKAGE_RUN,
            )
        append(session, principal.take_audit())
        return run.id, events


def _unmatched(listed, matched: pl.DataFrame, tied: pl.DataFrame, threshold: float) -> pl.DataFrame:
    """Every line not matched, with why: its reject reasons, a tie, or no match."""
    readable = listed.persons.select(ROW)
    ambiguous = tied.select(
        pl.col(ROW).alias("row"),
        pl.format("ambiguous: {} registry persons match equally well", pl.col("tied")).alias(
            "reason"
        ),
    )
    none = (
        readable.join(matched.select(ROW), on=ROW, how="anti")
        .join(tied.select(ROW), on=ROW, how="anti")
        .select(
            pl.col(ROW).alias("row"),
            pl.lit(f"no match at or above {threshold:g}").alias("reason"),
        )
    )
    return pl.concat([listed.rejects, ambiguous.cast(REPORT), none.cast(REPORT)]).sort("row")


def _write_report(unmatched: pl.DataFrame, list_name: str, final: Path) -> Path:
    """The report in a private temporary file beside `final` (same file system: the rename is
    atomic). Lines and reasons only: never a line's content."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w",
        dir=final.parent,
        prefix=f".{final.name}.",
        suffix=".part",
        delete=False,
        newline="",
        encoding="utf-8-sig",
    ) as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "row", "reason"])
        shown = spreadsheet_cell(for_terminal(list_name))
        for row, reason in unmatched.iter_rows():
            writer.writerow([shown, row, spreadsheet_cell(for_terminal(reason))])
    return Path(handle.name)
