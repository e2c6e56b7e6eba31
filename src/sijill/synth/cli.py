"""`sijill synth`: generate a synthetic country's registry files with ground truth."""

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from sijill.core.errors import SijillError

console = Console(stderr=True)

STAGES = {
    "areas": "drawing the map",
    "households": "generating households",
    "survey": "drawing the survey sample",
    "done": "done",
}


def synth(
    households: int = typer.Option(..., "--households", "-n", help="number of households"),
    seed: int = typer.Option(0, help="random seed: the same seed gives the same files"),
    out: Path = typer.Option(..., "--out", "-o", help="folder to write (empty or an earlier run)"),
) -> None:
    """Generate a synthetic MENA-like country: areas, households, persons, ground truth.

    The files follow docs/data-format.md (Parquet and CSV), so `sijill import` reads them as is.

    Ground truth: consumption and poverty per household, duplicate records, a 1% survey.

    Example: sijill synth --households 20000 --seed 7 --out demo-data
    """
    from sijill.synth.service import check_arguments, generate

    try:
        check_arguments(households, seed, out)
    except SijillError as error:
        typer.secho(f"Error: {error.detail}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(STAGES["areas"], total=1.0)

        def show(stage: str, fraction: float) -> None:
            bar.update(task, description=STAGES.get(stage, stage), completed=fraction)

        try:
            manifest = generate(households, seed, out, show)
        except SijillError as error:
            bar.stop()
            typer.secho(f"Error: {error.detail}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
    sizes, rates = manifest["sizes"], manifest["poverty_rates"]
    console.print(
        f"Wrote {sizes['households']:,} households, {sizes['persons']:,} persons "
        f"({sizes['duplicate_persons']:,} duplicates), {rates['persons_poor']:.1%} poor, to {out}",
        soft_wrap=True,
    )
