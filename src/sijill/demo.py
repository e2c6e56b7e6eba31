"""`sijill demo`: a synthetic country in a fresh SQLite registry, summarised, then served."""

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.orm import Session

from sijill.core.db import make_engine, upgrade
from sijill.core.settings import get_settings

console = Console()
DEMO_SEED = 2026


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _synthesise(out: Path, households: int) -> None:
    from sijill.synth.service import generate

    manifest = out / "manifest.json"
    if manifest.exists():
        meta = json.loads(manifest.read_text())
        if meta.get("seed") == DEMO_SEED and meta.get("households") == households:
            console.print(f"Using the synthetic country already in {out}/")
            return
    with _progress() as bar:
        task = bar.add_task("generating a synthetic country", total=1.0)
        generate(households, DEMO_SEED, out, lambda _step, done: bar.update(task, completed=done))


def _import(settings, out: Path) -> None:
    from sijill.registry.bulk.service import import_path

    engine = make_engine(settings.database_url)
    with _progress() as bar:
        task = bar.add_task("importing into the registry", total=None)
        report = import_path(
            engine,
            settings,
            out,
            actor="demo",
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    counts = report.counts
    console.print(
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


def _print_summary(settings) -> None:
    from sijill.registry.summary import registry_summary

    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        summary = registry_summary(session)
    engine.dispose()
    table = Table(title="Registry by governorate")
    table.add_column("governorate")
    table.add_column("code")
    table.add_column("households", justify="right")
    table.add_column("persons", justify="right")
    for row in summary.regions:
        table.add_row(row.name, row.code, f"{row.households:,}", f"{row.persons:,}")
    console.print(table)
    console.print(
        f"Households: {summary.households:,}   Persons: {summary.persons:,}   "
        f"Refugees and asylum seekers: {summary.refugees:,}   "
        f"Persons with disability (Washington Group): {summary.persons_with_disability:,}"
    )


def demo(
    households: int = typer.Option(20_000, help="size of the synthetic country"),
    data: Path = typer.Option(Path("demo-data"), help="where the synthetic files go"),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="start the API at the end"),
) -> None:
    """Generate a synthetic country, import it into the registry, summarise it, serve the API.

    Runs on the embedded SQLite registry (SIJILL_DATABASE_URL, default sqlite:///sijill.db).

    Example: sijill demo --no-serve
    """
    started = time.perf_counter()
    settings = get_settings()
    upgrade(settings.database_url)
    _synthesise(data, households)
    _import(settings, data)
    _print_summary(settings)
    console.print(f"Demo ready in {time.perf_counter() - started:.1f} s.")
    if serve:
        from sijill.api import serve as serve_api

        console.print(
            f"API: http://{settings.host}:{settings.port}/  "
            f"(docs: http://{settings.host}:{settings.port}/docs) — Ctrl-C stops it."
        )
        serve_api(settings)
