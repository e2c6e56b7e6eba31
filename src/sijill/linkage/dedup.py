"""`sijill dedup`: duplicate persons within the registry (or an area), proposed for review.

The registry's persons are read in bulk (`extract`), keyed (`features`), scored (`scoring`),
and every pair at or above the review threshold becomes a `match_pair` (what it was decided
from) and, unless the pair is already open for review or a reviewer has said "not the same"
before, a review flag of kind "possible_duplicate" that national registrars list and decide
with the other flags. Households that share a duplicate person are the flags' two households.
The model a run used is stored by version (`linkage_model`) beside the run.

Everything a run writes is one transaction: a run either proposes all its pairs or none.
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import BigInteger, Engine, bindparam, func, insert, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.settings import Settings
from sijill.linkage import model as linkage_model
from sijill.linkage.extract import registry_persons
from sijill.linkage.features import match_frame
from sijill.linkage.models import DEDUP, LinkageModel, LinkageRun, MatchPair
from sijill.linkage.scoring import score
from sijill.registry.merges.schemas import MergeEvidence
from sijill.registry.merges.service import merge_persons, older_of
from sijill.registry.reviews.models import (
    DECIDED,
    LINKAGE_MATCH,
    OPEN,
    POSSIBLE_DUPLICATE,
    ReviewFlag,
)
from sijill.registry.reviews.service import ACTION_RAISE, RECORD_TYPE
from sijill.security.area_scope import run_area
from sijill.security.audit.service import append
from sijill.security.principal import Principal
from sijill.security.roles import Permission

ACTION = "linkage.dedup"
RUN_RECORD = "linkage_run"
NOT_THE_SAME = "different_persons"
SAME_PERSON = "same_person"


@dataclass
class DedupReport:
    run_id: int
    model_version: str
    area_code: str | None
    records: int
    pairs_proposed: int
    flags_raised: int
    merged: int
    already_open: int
    decided_before: int
    seconds: float


def resolve_area(session: Session, principal: Principal, area_code: str | None) -> int | None:
    """The area a run is limited to (None: the whole registry), inside the user's scope."""
    return run_area(
        session, principal, Permission.LINKAGE_RUN, area_code,
        whole_registry="Deduplicating the whole registry",
    )  # fmt: skip


def run_dedup(
    engine: Engine,
    settings: Settings,
    *,
    principal: Principal,
    area_code: str | None = None,
    model: dict[str, Any] | None = None,
    save_model: Path | None = None,
    threshold: float | None = None,
    job_id: int | None = None,
    stage: Callable[[str], None] = lambda _: None,
) -> DedupReport:
    started, began = clock.utcnow(), time.perf_counter()
    threshold = settings.linkage_review_threshold if threshold is None else threshold
    with Session(engine) as session:
        area_id = resolve_area(session, principal, area_code)
    stage("reading the registry")
    persons = registry_persons(engine, area_id=area_id, work_dir=settings.work_dir)
    stage("computing match keys")
    frame = match_frame(persons)
    scored = score(
        [frame], threshold=threshold, u_pairs=settings.linkage_u_pairs, model=model, stage=stage
    )
    if save_model is not None:
        linkage_model.save(scored.model, save_model)
    stage("recording the pairs")
    homes = persons.select(pl.col("unique_id").alias("person_id"), "household_id")
    with Session(engine) as session, session.begin():
        run = LinkageRun(
            kind=DEDUP,
            model_version=keep_model(session, scored.model),
            area_id=area_id,
            job_id=job_id,
            run_by=principal.username,
            started_at=started,
            records=persons.height,
            review_threshold=threshold,
        )
        session.add(run)
        session.flush()
        outcome = _propose(session, run, scored.pairs, homes, principal.username)
        if settings.linkage_auto_merge:
            outcome.merged = _merge_accepted(
                session, principal, scored, outcome.flags, settings.linkage_accept_threshold
            )
        run.pairs_proposed = scored.pairs.height
        run.flags_raised = len(outcome.flag_ids)
        run.finished_at = clock.utcnow()
        principal.audit(ACTION, "ok", RUN_RECORD, str(run.id), permission=Permission.LINKAGE_RUN)
        if outcome.flag_ids:
            ids = outcome.flag_ids
            principal.audit(
                ACTION_RAISE,
                "ok",
                RECORD_TYPE,
                f"{len(ids)} flags {ids[0]}-{ids[-1]}",
                permission=Permission.LINKAGE_RUN,
            )
        append(session, principal.take_audit())
        run_id = run.id
    return DedupReport(
        run_id=run_id,
        model_version=scored.model["version"],
        area_code=area_code,
        records=persons.height,
        pairs_proposed=scored.pairs.height,
        flags_raised=len(outcome.flag_ids),
        merged=outcome.merged,
        already_open=outcome.already_open,
        decided_before=outcome.decided_before,
        seconds=time.perf_counter() - began,
    )


def keep_model(session: Session, model: dict[str, Any]) -> str:
    version = model["version"]
    if session.get(LinkageModel, version) is None:
        session.add(
            LinkageModel(
                version=version,
                trained_at=datetime.fromisoformat(model["trained_at"]),
                trained_on_records=model["trained_on_records"],
                body=model,
            )
        )
        session.flush()
    return version


@dataclass
class _Proposed:
    flag_ids: list[int]  # raised by this run
    flags: dict[tuple[int, int], int]  # every proposed pair's open flag
    already_open: int
    decided_before: int
    merged: int = 0


def _pairs_in(session: Session, pairs: pl.DataFrame, *conditions) -> dict[tuple[int, int], int]:
    """(a, b) → flag id of the flags on these pairs matching `conditions`."""
    found: dict[tuple[int, int], int] = {}
    if session.get_bind().dialect.name == "postgresql":
        # The pairs as two arrays joined to the flags: one statement. A list of row values
        # (`(a, b) IN (...)`) cost PostgreSQL 85 s for 30,660 pairs among 52,248 flags.
        listed = (
            func.unnest(
                bindparam("a", pairs["person_a_id"].to_list(), ARRAY(BigInteger)),
                bindparam("b", pairs["person_b_id"].to_list(), ARRAY(BigInteger)),
            )
            .table_valued("a", "b")
            .render_derived(name="wanted")
        )
        rows = session.execute(
            select(ReviewFlag.person_a_id, ReviewFlag.person_b_id, ReviewFlag.id)
            .join(
                listed,
                (ReviewFlag.person_a_id == listed.c.a) & (ReviewFlag.person_b_id == listed.c.b),
            )
            .where(*conditions)
        )
        return {(a, b): flag_id for a, b, flag_id in rows}
    keys = list(pairs.select("person_a_id", "person_b_id").iter_rows())
    for start in range(0, len(keys), 5_000):
        chunk = keys[start : start + 5_000]
        rows = session.execute(
            select(ReviewFlag.person_a_id, ReviewFlag.person_b_id, ReviewFlag.id).where(
                tuple_(ReviewFlag.person_a_id, ReviewFlag.person_b_id).in_(chunk), *conditions
            )
        )
        found.update({(a, b): flag_id for a, b, flag_id in rows})
    return found


def _propose(
    session: Session, run: LinkageRun, pairs: pl.DataFrame, homes: pl.DataFrame, actor: str
) -> _Proposed:
    if pairs.height == 0:
        return _Proposed([], {}, 0, 0)
    # A reviewer's "not the same" holds: such a pair is recorded but not proposed again.
    refused = _pairs_in(session, pairs, ReviewFlag.decision == NOT_THE_SAME)
    open_flags = _pairs_in(
        session, pairs, ReviewFlag.kind == POSSIBLE_DUPLICATE, ReviewFlag.state == OPEN
    )
    with_homes = pairs.join(
        homes.rename({"person_id": "person_a_id", "household_id": "household_a_id"}),
        on="person_a_id",
        how="left",
    ).join(
        homes.rename({"person_id": "person_b_id", "household_id": "household_b_id"}),
        on="person_b_id",
        how="left",
    )
    now = run.started_at
    new_flags = [
        {
            "kind": POSSIBLE_DUPLICATE,
            "state": OPEN,
            "person_a_id": row["person_a_id"],
            "person_b_id": row["person_b_id"],
            "household_a_id": row["household_a_id"],
            "household_b_id": row["household_b_id"],
            "reason": LINKAGE_MATCH,
            "source": "linkage",
            "raised_by": actor[:64],
            "raised_at": now,
        }
        for row in with_homes.iter_rows(named=True)
        if (key := (row["person_a_id"], row["person_b_id"])) not in refused
        and key not in open_flags
    ]
    flag_ids: dict[tuple[int, int], int] = dict(open_flags)
    if new_flags:
        returned = session.execute(
            insert(ReviewFlag).returning(
                ReviewFlag.person_a_id, ReviewFlag.person_b_id, ReviewFlag.id
            ),
            new_flags,
        )
        raised = {(a, b): flag_id for a, b, flag_id in returned}
        flag_ids.update(raised)
    else:
        raised = {}
    session.execute(
        insert(MatchPair),
        [
            {
                "run_id": run.id,
                "person_a_id": a,
                "person_b_id": b,
                "match_weight": weight,
                "match_probability": probability,
                "levels": json.loads(levels),
                "review_flag_id": flag_ids.get((a, b)),
            }
            for a, b, weight, probability, levels in pairs.iter_rows()
        ],
    )
    return _Proposed(sorted(raised.values()), flag_ids, len(open_flags), len(refused))


def _merge_accepted(
    session: Session,
    principal: Principal,
    scored,
    flags: dict[tuple[int, int], int],
    accept: float,
) -> int:
    """Merge the pairs at or above `accept`, strongest first, each decided on its flag as a
    reviewer's "same person" would be, by the run's user; the older record is kept. A record
    already merged in this run is not merged again (a chain A-B-C keeps A and merges B; C
    waits for a reviewer, who sees it proposed against A's record next run)."""
    accepted = scored.pairs.filter(pl.col("match_probability") >= accept).sort(
        "match_weight", descending=True
    )
    merged_away: set[int] = set()
    merges = 0
    for a, b, weight, probability, levels in accepted.iter_rows():
        flag_id = flags.get((a, b))
        if flag_id is None or a in merged_away or b in merged_away:
            continue
        kept, lost = older_of(session, a, b)
        merge_persons(
            session,
            principal,
            kept,
            lost,
            evidence=MergeEvidence(
                match_weight=weight,
                match_probability=probability,
                levels=json.loads(levels),
                model_version=scored.model["version"],
            ),
            review_flag_id=flag_id,
        )
        flag = session.get(ReviewFlag, flag_id)
        flag.state, flag.decision = DECIDED, SAME_PERSON
        flag.decided_by, flag.decided_at = principal.username, clock.utcnow()
        merged_away.add(lost)
        merges += 1
    return merges
