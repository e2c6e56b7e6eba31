"""`sijill demo`: a synthetic country in a fresh SQLite registry, summarised, then served."""

import json
import secrets
import time
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from sijill.core.db import make_engine, upgrade
from sijill.core.settings import get_settings
from sijill.security.cli_common import Output, OutputOption, console, emit, progress_bar

DEMO_SEED = 2026
USER_COLUMNS = ["user", "role", "areas", "password"]


def _synthesise(say: Console, out: Path, households: int) -> None:
    from sijill.synth.service import generate

    manifest = out / "manifest.json"
    if manifest.exists():
        meta = json.loads(manifest.read_text())
        if meta.get("seed") == DEMO_SEED and meta.get("households") == households:
            say.print(f"Using the synthetic country already in {out}/")
            return
    with progress_bar("generating a synthetic country", total=1.0) as update:
        generate(households, DEMO_SEED, out, lambda _stage, done: update(done))


# One user per role, each scoped to a different part of the synthetic country.
DEMO_USERS = [
    ("demo-registrar", "registrar", "SJ0101"),
    ("demo-program", "program_officer", "SJ01"),
    ("demo-payment", "payment_officer", "SJ02"),
    ("demo-grievance", "grievance_officer", "SJ0301"),
    ("demo-auditor", "auditor", None),
    ("demo-analyst", "analyst", None),
    ("demo-admin", "administrator", None),
]


def _demo_users(settings) -> list[dict[str, str]]:
    """Create (or, on a second run, reset) the demo users; their passwords are usable at once
    (not one-time) so the demo can be tried straight away. Only for a demo registry."""
    from sijill.core.db import session_factory, transaction
    from sijill.security.audit.service import append
    from sijill.security.principal import Principal
    from sijill.security.users.accounts import GrantSpec, create_user, set_grants
    from sijill.security.users.models import User
    from sijill.security.users.passwords import hash_password

    engine = make_engine(settings.database_url)
    installer = Principal.system("demo")
    shown = []
    with transaction(session_factory(engine)) as session:
        for username, role, area in DEMO_USERS:
            grants = [GrantSpec(role, area)]
            user = session.query(User).filter_by(username=username).one_or_none()
            if user is None:
                create_user(session, installer, username, grants)
                user = session.query(User).filter_by(username=username).one()
            else:
                set_grants(session, installer, username, grants)
            password = f"{username}-{secrets.token_hex(4)}"
            user.password_hash = hash_password(password)
            user.password_one_time = False
            user.disabled = False
            areas = area or "whole country"
            shown.append({"user": username, "role": role, "areas": areas, "password": password})
        append(session, installer.take_audit())
    engine.dispose()
    return shown


def _print_users(say: Console, output: Output, settings, users: list[dict[str, str]]) -> None:
    """The demo's result: its users and their passwords (the rows of --output json or csv)."""
    title = "Demo users (passwords change at every run of the demo)"
    emit(users, USER_COLUMNS, output, title=title)
    user, password = users[0]["user"], users[0]["password"]
    base = f"http://{settings.host}:{settings.port}"
    say.print(
        "Get a token, then call the API with it:\n"
        f"  curl -s -X POST {base}/auth/token -H 'Content-Type: application/json' "
        f'-d \'{{"username": "{user}", "password": "{password}"}}\'\n'
        f"  curl -s {base}/households?page_size=1 -H 'Authorization: Bearer <access_token>'\n"
        f"On the command line: sijill login --user {user}",
        soft_wrap=True,
    )


def _import(say: Console, settings, out: Path) -> None:
    from sijill.registry.bulk.service import import_path
    from sijill.security.principal import Principal

    engine = make_engine(settings.database_url)
    with progress_bar("importing into the registry", "households") as update:
        report = import_path(
            engine, settings, out, principal=Principal.system("demo"), progress=update
        )
    counts = report.counts
    say.print(
        f"Imported {counts.households_added:,} households and {counts.persons_added:,} persons "
        f"in {report.seconds:.1f} s"
        + (
            f" ({counts.households_present:,} were already there)"
            if counts.households_present
            else ""
        )
        + (
            f"; {report.rejected_rows:,} rows rejected, see {report.rejects_path}"
            if report.rejected_rows
            else ""
        )
    )
    engine.dispose()


def _pmt_survey(out: Path) -> Path:
    """A survey of a tenth of the demo's households with their true consumption, beside its
    households and persons files: synth's own survey (1%) is too small for the PMT's terms at
    the demo's size. Equal-probability sample, so every weight is households / sampled."""
    import polars as pl

    path = out / "pmt_survey.parquet"
    truth = pl.read_parquet(out / "truth_households.parquet")
    sample = truth.sample(fraction=0.1, seed=DEMO_SEED)
    sample.select(
        "household_key",
        "consumption_pc",
        pl.lit(truth.height / sample.height).alias("weight"),
        pl.col("region_code").alias("stratum"),
    ).write_parquet(path)
    return path


def _approved_pmt(say: Console, settings, out: Path) -> None:
    """A PMT fitted on the synthetic survey and approved by a second principal (four eyes), so
    that every example program (examples/programs/) runs on the demo registry at once."""
    from decimal import Decimal

    from sijill.security.audit.service import append
    from sijill.security.principal import Principal
    from sijill.security.roles import Permission
    from sijill.synth.service import reference_date
    from sijill.synth.welfare import POVERTY_LINE
    from sijill.targeting.pmt_models import approve, get_model
    from sijill.targeting.runs import fit_survey

    engine = make_engine(settings.database_url)
    fitter, approver = Principal.system("demo-pmt-fit"), Principal.system("demo-pmt-approve")
    artifact = fit_survey(
        engine,
        principal=fitter,
        survey=_pmt_survey(out),
        poverty_line=Decimal(POVERTY_LINE),
        as_of=reference_date(DEMO_SEED),
        folds=3,
    )
    version = artifact["version"]
    with Session(engine) as session, session.begin():
        if get_model(session, version).approved_by is None:  # a re-run fits the same model
            approve(session, version, approver.username)
            approver.audit(
                "targeting.pmt_approve", "ok", "pmt_model", version,
                permission=Permission.TARGETING_APPROVE,
            )  # fmt: skip
            append(session, approver.take_audit())
    engine.dispose()
    r2 = artifact["validation"]["out_of_sample"][artifact["method"]]["r2"]
    say.print(
        f"PMT {version} fitted on {artifact['data_source']['households']:,} surveyed households "
        f"(out-of-sample R² {r2:.2f}) and approved: the example programs run with "
        "`sijill programs run examples/programs/<scheme>.yaml`",
        soft_wrap=True,
    )


DEMO_PAYER_IBAN = "JO02SIJL0000000000001234567890"  # the sandbox's paying account


def _payment_cycle(say: Console, settings, out: Path) -> None:
    """The delivery chain once through, on the demo registry: every example program run, the
    households it notified enrolled from the cycle's first day, this cycle's entitlements
    generated and approved (two officers), the synthetic instruments imported, the payments
    prepared, approved (two officers), released to the sandbox providers, their answers
    reconciled, and the ledger checked."""
    from sqlalchemy import select

    from sijill.payments import ledger
    from sijill.payments.batches import approve as approve_batch
    from sijill.payments.batches import release
    from sijill.payments.files import batch_folder
    from sijill.payments.instrument_import import import_instruments
    from sijill.payments.prepare import prepare
    from sijill.payments.providers import provider_named
    from sijill.payments.reconcile import reconcile
    from sijill.programs.cycles import cycle_of
    from sijill.programs.enrollment import enroll
    from sijill.programs.entitlement_service import approve, generate
    from sijill.programs.models import NOTIFIED, Enrollment
    from sijill.programs.service import run_program
    from sijill.programs.spec import load_spec
    from sijill.security.keys.keyring import install_keyring
    from sijill.security.principal import Principal

    if not settings.payer_iban:
        settings = settings.model_copy(update={"payer_iban": DEMO_PAYER_IBAN})
    engine = make_engine(settings.database_url)
    keyring = install_keyring(settings)
    officer, second = Principal.system("demo-program"), Principal.system("demo-program-check")
    payer, checker = Principal.system("demo-payment"), Principal.system("demo-payment-check")
    today = date.today()
    cycles: set[str] = set()
    specs = sorted((Path(__file__).parents[2] / "examples" / "programs").glob("*.yaml"))
    if not specs:
        say.print("No example programs beside this installation: no payment cycle is run.")
        return
    with progress_bar("running the example programs", total=float(len(specs))) as update:
        for number, path in enumerate(specs, start=1):
            spec = load_spec(path)
            cycle = cycle_of(spec.cycle, today)
            run_program(engine, settings, principal=officer, spec_path=path, as_of=today)
            with Session(engine) as session:
                notified = list(session.scalars(select(Enrollment.household_id).where(
                    Enrollment.program == spec.code, Enrollment.status == NOTIFIED)))  # fmt: skip
            if notified:
                enroll(engine, principal=officer, program=spec.code, household_ids=notified,
                       answer="enrolled", on=cycle.first)  # fmt: skip
            generate(engine, settings, principal=officer, program=spec.code, cycle=cycle.name)
            approve(engine, principal=second, program=spec.code, cycle=cycle.name)
            cycles.add(cycle.name)
            update(float(number))
    imported = import_instruments(
        engine, settings, principal=payer, keyring=keyring, path=out / "instruments.csv",
        source=_source(out),
    )  # fmt: skip
    paid = failed = held = 0
    for cycle_name in sorted(cycles):
        report = prepare(engine, settings, keyring, principal=payer, cycle=cycle_name)
        held += sum(report.held.values())
        for batch in report.batches:
            approve_batch(engine, settings, principal=checker, batch_id=batch["id"])
            release(engine, settings, principal=payer, batch_id=batch["id"])
            provider = provider_named(settings, batch["provider"])
            suffix = ".xml" if batch["provider"] == "iso20022" else ".csv"  # what each answers
            answer = provider.answer(
                batch_folder(settings, batch["id"]),
                settings.payments_path / f"sandbox-answer-{batch['id']}{suffix}",
                fail_one_in=50, seed=batch["id"],
            )  # fmt: skip
            summary = reconcile(
                engine, settings, principal=payer, path=answer, provider=batch["provider"]
            )
            paid, failed = paid + summary["paid"], failed + summary["failed"]
    with Session(engine) as session:
        checked = ledger.check(session)
    engine.dispose()
    verdict = "balanced" if checked.ok else "NOT balanced: " + "; ".join(checked.problems)
    say.print(
        f"Paid cycle(s) {', '.join(sorted(cycles))} of {len(specs)} example programs: "
        f"{imported.added:,} payment instruments imported; {paid:,} payments paid, "
        f"{failed:,} failed (the sandbox providers refuse one in 50), {held:,} held back by "
        f"the gate; ledger {verdict} ({checked.entitlements:,} entitlements). See `sijill "
        "payments report` and `sijill payments batches`.",
        soft_wrap=True,
    )


def _source(out: Path) -> str:
    """The import source the demo's households came in under (their keys are the synth's)."""
    return f"synth-{json.loads((out / 'manifest.json').read_text())['seed']}"


def _print_summary(say: Console, settings) -> None:
    from sijill.analytics.summary import registry_summary
    from sijill.security.audit.service import append
    from sijill.security.principal import Principal

    engine = make_engine(settings.database_url)
    installer = Principal.system("demo")
    with Session(engine) as session, session.begin():
        summary = registry_summary(session, installer, min_cell=settings.min_cell_size)
        append(session, installer.take_audit())
    engine.dispose()
    table = Table(title="Registry by governorate")
    table.add_column("governorate")
    table.add_column("code")
    table.add_column("households", justify="right")
    table.add_column("persons", justify="right")
    for row in summary.regions:
        table.add_row(row.name, row.code, f"{row.households:,}", f"{row.persons:,}")
    say.print(table)
    say.print(
        f"Households: {summary.households:,}   Persons: {summary.persons:,}   "
        f"Refugees and asylum seekers: {summary.refugees:,}   "
        f"Persons with disability (Washington Group): {summary.persons_with_disability:,}"
    )


def demo(
    households: int = typer.Option(20_000, help="size of the synthetic country"),
    data: Path = typer.Option(Path("demo-data"), help="where the synthetic files go"),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="start the API at the end"),
    output: OutputOption = Output.table,
) -> None:
    """Generate a synthetic country, import it into the registry, summarise it, serve the API.

    Runs on the embedded SQLite registry (SIJILL_DATABASE_URL, default sqlite:///sijill.db).
    With --output json or csv, stdout carries only the demo users and their passwords; the
    rest goes to stderr.

    Example: sijill demo --no-serve
    """
    from sijill.security.users.accounts import create_first_administrator

    say = Console() if output is Output.table else console
    started = time.perf_counter()
    settings = get_settings()
    upgrade(settings.database_url)
    password = create_first_administrator(settings)
    if password:
        say.print(
            f"Administrator 'admin' created; one-time password (shown once): {password}",
            soft_wrap=True,
        )
    _synthesise(say, data, households)
    _import(say, settings, data)
    _approved_pmt(say, settings, data)
    _payment_cycle(say, settings, data)
    _print_summary(say, settings)
    _print_users(say, output, settings, _demo_users(settings))
    say.print(f"Demo ready in {time.perf_counter() - started:.1f} s.")
    if serve:
        from sijill.api import serve as serve_api

        say.print(
            f"API: http://{settings.host}:{settings.port}/  "
            f"(docs: http://{settings.host}:{settings.port}/docs) — Ctrl-C stops it."
        )
        serve_api(settings)
