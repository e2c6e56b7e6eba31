"""`sijill synth`: generate a synthetic country's registry files with ground truth."""

from pathlib import Path

import typer

# synth may not import security (it stands beside the chain), so not `cli_common`: the output
# helpers themselves, which `cli_common` re-exports for every other command.
from sijill.core.cli_output import Output, OutputOption, emit_one, fail, progress_bar
from sijill.core.errors import SijillError

STAGES = {
    "areas": "drawing the map",
    "households": "generating households",
    "survey": "drawing the survey sample",
    "done": "done",
}


def synth(
    households: int = typer.Option(..., "--households", "-n", help="number of households"),
    seed: int = typer.Option(0, help="random seed: the same seed gives the same files"),
    out: Path = typer.Option(..., "--out", help="folder to write (empty or an earlier run)"),
    output: OutputOption = Output.table,
) -> None:
    """Generate a synthetic MENA-like country: areas, households, persons, ground truth.

    The files follow docs/data-format.md (Parquet and CSV), so `sijill import` reads them as is.

    Ground truth: consumption and poverty per household, duplicate records, a 1% survey.

    Example: sijill synth --households 20000 --seed 7 --out demo-data
    """
    from sijill.synth.service import check_arguments, generate

    try:
        check_arguments(households, seed, out)
        with progress_bar(STAGES["areas"], total=1.0) as update:
            manifest = generate(
                households,
                seed,
                out,
                lambda stage, fraction: update(fraction, description=STAGES.get(stage, stage)),
            )
    except SijillError as error:
        raise fail(error.detail) from None
    sizes, rates = manifest["sizes"], manifest["poverty_rates"]
    emit_one(
        {
            "households": sizes["households"],
            "persons": sizes["persons"],
            "duplicate_persons": sizes["duplicate_persons"],
            "persons_poor": rates["persons_poor"],
            "out": str(out),
        },
        output,
        message=f"Wrote {sizes['households']:,} households, {sizes['persons']:,} persons "
        f"({sizes['duplicate_persons']:,} duplicates), {rates['persons_poor']:.1%} poor, "
        f"to {out}",
        soft_wrap=True,
    )
