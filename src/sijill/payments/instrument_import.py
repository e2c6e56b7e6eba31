"""Importing payment instruments in bulk: a national roll-out, a provider's list of accounts.

The file (CSV, XLSX or Parquet) has `household_id` (the registry ID) or `household_key` (the
record key of the source a registry import read, with `source`), `kind`, `holder`, the fields
of its kind (`iban`, `bic`; `phone`, `operator`; `point`; `card_number`) and optionally
`person_id`, the member who collects. The same rules as one instrument recorded by hand
(`instrument_details`) run column-wise; IBANs, phones and card check digits go through their
libraries once per distinct value.

A line that cannot be used is rejected with its line and reason, never its content: a bad ID
or detail, a household not in the registry or not in the user's areas (one reason for both),
a household on an earlier line too, one whose change waits for a second officer, or, without
`replace`, one that already has an active instrument. A line equal to the household's active
instrument changes nothing, so a file imported twice adds nothing the second time. With
`replace`, a changed instrument replaces the active one, or waits for a second officer where
the risk rule holds it (`instruments.review_reason`).

Everything goes in one transaction (by COPY on PostgreSQL), with one audit record whose ID
carries the counts: `a<added> p<pending> r<replaced> u<unchanged> x<rejected>`.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.errors import InvalidInput
from sijill.core.files.contract import REJECTS, ROW
from sijill.core.files.tabular import read_table
from sijill.core.settings import Settings
from sijill.payments import instrument_details as rules
from sijill.payments.instrument_columns import COLUMNS, checked_lines, documents
from sijill.payments.instruments import (
    ALWAYS_REASON,
    DETAILS_FIELD,
    IMPORT,
    payment_due,
    read_details,
)
from sijill.payments.models import ACTIVE, PENDING, REPLACED, PaymentInstrument
from sijill.programs.writes import in_batches, write_rows
from sijill.registry.models import Household, Membership
from sijill.security.audit.service import append
from sijill.security.keys.keyring import Keyring
from sijill.security.principal import Principal
from sijill.security.roles import Permission

_BATCH_ROWS = 200_000
_UNKNOWN = "there is no household with this ID in your scope"


@dataclass
class ImportReport:
    added: int  # active at once
    pending: int  # waiting for a second officer
    replaced: int  # active instruments the added ones replaced
    unchanged: int  # lines equal to the household's active instrument
    rejects: pl.DataFrame  # row, reason, message (never a line's content)

    def audit_id(self) -> str:
        return (
            f"a{self.added} p{self.pending} r{self.replaced} u{self.unchanged} "
            f"x{self.rejects.height}"
        )


def import_instruments(
    engine: Engine,
    settings: Settings,
    *,
    principal: Principal,
    keyring: Keyring,
    path: Path,
    replace: bool = False,
    source: str | None = None,
) -> ImportReport:
    action = Permission.INSTRUMENTS_WRITE
    principal.require(action)
    rows, rejects = _read(path, source)
    region = rules.phone_region(settings.national_id_scheme)
    checked = checked_lines(rows, region)
    with Session(engine) as session, session.begin():
        scope = principal.scope(session, action)
        checked = _resolve_households(session, checked, source, scope)
        checked = _check_recipients(session, checked)
        good = documents(checked.filter(pl.col("reason").is_null()))
        good, unchanged, held_back = _against_current(session, keyring, good, replace)
        rejects = pl.concat([rejects, _rejects(checked), held_back]).sort("row")
        good = _review(session, settings.instrument_change_review, good)
        now = clock.utcnow()
        replaced = _replace_active(session, good, now)
        write_rows(
            session,
            PaymentInstrument.__table__,
            good.select(
                "household_id",
                "person_id",
                "kind",
                keyring.encrypt_column(DETAILS_FIELD, good["document"]).alias("details"),
                pl.Series(
                    "fingerprint",
                    keyring.blind_index_many(
                        good["account"].to_list(), field=rules.BLIND_INDEX_FIELD
                    ),
                    pl.String,
                ),
                "masked",
                "status",
                "reason",
                pl.lit(principal.username).alias("created_by"),
                pl.lit(now).alias("created_at"),
            ),
        )
        pending = good.filter(pl.col("status") == PENDING).height
        report = ImportReport(good.height - pending, pending, replaced, unchanged, rejects)
        principal.audit(IMPORT, "ok", "payment_instrument_import", report.audit_id(),
                        permission=action)  # fmt: skip
        append(session, principal.take_audit())
    return report


def _read(path: Path, source: str | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    frames, rejects = [], []
    for batch in read_table(path, _BATCH_ROWS):
        rejects.append(batch.rejects)
        if batch.rows.height:
            frames.append(batch.rows)
    rows = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    if frames:
        key = "household_key" if "household_key" in rows.columns else "household_id"
        missing = [c for c in (key, "kind", "holder") if c not in rows.columns]
        if missing:
            raise InvalidInput(f"{path.name}: the column(s) {', '.join(missing)} are missing")
        if key == "household_key" and not source:
            raise InvalidInput(
                f"{path.name}: household_key names households by the record keys of a source: "
                "give the source's name (as `sijill import` was given it, e.g. synth-7)"
            )
    rows = rows.with_columns(
        pl.lit(None, pl.String).alias(c) for c in COLUMNS if c not in rows.columns
    )
    if ROW not in rows.columns:
        rows = rows.with_columns(pl.lit(None, pl.Int64).alias(ROW))
    no_rejects = pl.DataFrame(schema=REJECTS)
    return rows.select(*COLUMNS, ROW), pl.concat([no_rejects, *rejects]).cast(REJECTS)


def _flag(frame: pl.DataFrame, condition: pl.Expr, code: str, words: str) -> pl.DataFrame:
    """Reject the usable lines where `condition` holds."""
    hit = pl.col("reason").is_null() & condition.fill_null(False)
    return frame.with_columns(
        reason=pl.when(hit).then(pl.lit(code)).otherwise("reason"),
        message=pl.when(hit).then(pl.lit(words)).otherwise("message"),
    )


def _resolve_households(session: Session, frame: pl.DataFrame, source: str | None, scope):
    """Registry IDs for `household_key` lines; IDs outside the user's areas (or nowhere) are
    rejected as unknown; a household on an earlier line too, as repeated."""
    keys = frame.filter(pl.col("household_id").is_null() & pl.col("household_key").is_not_null())
    if keys.height and source:
        wanted = (f"{source}:" + keys["household_key"].unique()).to_list()
        found: dict[str, int] = {}
        for chunk in _slices(wanted):
            found |= dict(
                session.execute(
                    select(Household.source_key, Household.id).where(
                        Household.source_key.in_(chunk)
                    )
                ).all()
            )
        lookup = pl.DataFrame(
            {"household_key": [k.partition(":")[2] for k in found], "_id": list(found.values())},
            schema={"household_key": pl.String, "_id": pl.Int64},
        )
        frame = frame.join(
            lookup, on="household_key", how="left", maintain_order="left"
        ).with_columns(pl.coalesce("household_id", "_id").alias("household_id"))
        frame = frame.drop("_id")
    ids = frame.filter(pl.col("household_id").is_not_null())["household_id"].unique().to_list()
    allowed: list[int] = []
    for chunk in in_batches(sorted(ids)):
        rows = session.execute(
            select(Household.id, Household.area_id).where(Household.id.in_(chunk))
        ).all()
        allowed += [row.id for row in rows if scope.allows(row.area_id)]
    frame = _flag(frame, ~pl.col("household_id").is_in(allowed), "unknown_household", _UNKNOWN)
    frame = frame.sort(ROW)
    usable = pl.col("reason").is_null()
    repeated = usable & (pl.int_range(pl.len()).over("household_id", usable) > 0)
    return _flag(frame, repeated, "repeated", "the household is on an earlier line too")


def _slices(values: list[str], size: int = 10_000):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _check_recipients(session: Session, frame: pl.DataFrame) -> pl.DataFrame:
    named = frame.filter(pl.col("reason").is_null() & pl.col("person_id").is_not_null())
    members: list[tuple[int, int]] = []
    for chunk in in_batches(sorted(named["household_id"].unique().to_list())):
        members += [
            (row.household_id, row.person_id)
            for row in session.execute(
                select(Membership.household_id, Membership.person_id).where(
                    Membership.household_id.in_(chunk), Membership.end_date.is_(None)
                )
            )
        ]
    current = pl.DataFrame(
        members, schema={"household_id": pl.Int64, "person_id": pl.Int64}, orient="row"
    ).with_columns(pl.lit(True).alias("_member"))
    frame = frame.join(current, on=["household_id", "person_id"], how="left", maintain_order="left")
    frame = _flag(
        frame,
        pl.col("person_id").is_not_null() & pl.col("_member").is_null(),
        "not_a_member",
        "person_id is not a current member of the household",
    )
    return frame.drop("_member")


def _against_current(
    session: Session, keyring: Keyring, good: pl.DataFrame, replace: bool
) -> tuple[pl.DataFrame, int, pl.DataFrame]:
    """(lines to write, lines equal to the active instrument, rejects) given what the
    households hold now."""
    held: list[tuple] = []
    for chunk in in_batches(sorted(good["household_id"].to_list())):
        held += session.execute(
            select(
                PaymentInstrument.household_id,
                PaymentInstrument.status,
                PaymentInstrument.kind,
                PaymentInstrument.person_id,
                PaymentInstrument.details,
            )
            .where(
                PaymentInstrument.household_id.in_(chunk),
                PaymentInstrument.status.in_((ACTIVE, PENDING)),
            )
            .with_for_update()
        ).all()
    pending = {row[0] for row in held if row[1] == PENDING}
    active = [row for row in held if row[1] == ACTIVE and row[0] not in pending]
    documents = read_details(keyring, [row[4] for row in active])
    current = pl.DataFrame(
        {
            "household_id": [row[0] for row in active],
            "_same": [
                json.dumps([row[2], row[3], doc], sort_keys=True)
                for row, doc in zip(active, documents, strict=True)
            ],
        },
        schema={"household_id": pl.Int64, "_same": pl.String},
    )
    marked = good.join(current, on="household_id", how="left", maintain_order="left")
    # Compared as data, not text: only the lines of households that hold an instrument now.
    has = marked["_same"].is_not_null()
    mine = [
        json.dumps([kind, person, json.loads(doc)], sort_keys=True)
        for kind, person, doc in marked.filter(has).select("kind", "person_id", "document").rows()
    ]
    marked = marked.with_columns(
        pl.Series("_mine", [None] * marked.height, pl.String).scatter(has.arg_true(), mine)
        if mine
        else pl.lit(None, pl.String).alias("_mine")
    )
    marked = _flag(
        marked,
        pl.col("household_id").is_in(sorted(pending)),
        "change_pending",
        "a change of this household's instrument waits for a second officer",
    )
    same = pl.col("reason").is_null() & (pl.col("_mine") == pl.col("_same")).fill_null(False)
    unchanged = marked.filter(same).height
    marked = marked.filter(~same).with_columns(pl.col("_same").is_not_null().alias("has_active"))
    if not replace:
        marked = _flag(
            marked,
            pl.col("has_active"),
            "has_instrument",
            "the household already has an active instrument: import with --replace to change it",
        )
    rejects = _rejects(marked)
    return marked.filter(pl.col("reason").is_null()).drop("_mine", "_same"), unchanged, rejects


def _rejects(frame: pl.DataFrame) -> pl.DataFrame:
    bad = frame.filter(pl.col("reason").is_not_null())
    return bad.select(pl.col(ROW).alias("row"), "reason", "message").cast(REJECTS)


def _review(session: Session, rule: str, good: pl.DataFrame) -> pl.DataFrame:
    """Status and reason of each line: a change the risk rule holds waits for a second
    officer, anything else is active at once."""
    changing = sorted(good.filter("has_active")["household_id"].to_list())
    reasons: dict[int, str] = {}
    if rule == "always":
        reasons = dict.fromkeys(changing, ALWAYS_REASON)
    elif rule == "before_payment":
        for chunk in in_batches(changing):
            for household_id, program, cycle in session.execute(payment_due(chunk)).all():
                reasons.setdefault(
                    household_id,
                    f"a payment of {program} for cycle {cycle} is approved and not yet sent",
                )
    lookup = pl.DataFrame(
        {"household_id": list(reasons), "reason": list(reasons.values())},
        schema={"household_id": pl.Int64, "reason": pl.String},
    )
    return (
        good.drop("reason")
        .join(lookup, on="household_id", how="left", maintain_order="left")
        .with_columns(
            status=pl.when(pl.col("reason").is_not_null())
            .then(pl.lit(PENDING))
            .otherwise(pl.lit(ACTIVE))
        )
    )


def _replace_active(session: Session, good: pl.DataFrame, now) -> int:
    """Mark replaced the active instruments of the households whose new one is active."""
    ids = sorted(good.filter(pl.col("has_active") & (pl.col("status") == ACTIVE))["household_id"])
    for chunk in in_batches(ids):
        session.execute(
            update(PaymentInstrument)
            .where(PaymentInstrument.household_id.in_(chunk), PaymentInstrument.status == ACTIVE)
            .values(status=REPLACED, replaced_at=now)
        )
    return len(ids)
