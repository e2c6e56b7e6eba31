"""The tables of a targeting evaluation, as the report writes them and as its readers read
them back: the measures, the ROC curves, the designs and the selection's parameters.

Besides its CSV and XLSX copies (for spreadsheets: text cells neutralised), the report keeps
each table as Parquet, typed and untouched, so a page that shows the evaluation later reads
the very figures the report was written from instead of computing them again.
"""

from pathlib import Path

import polars as pl
from sqlalchemy.orm import Session

from sijill.core.errors import NotFound
from sijill.core.i18n import N_
from sijill.jobs.models import Job
from sijill.jobs.service import get_visible
from sijill.security.principal import Principal
from sijill.targeting.evaluation import ALL, MEASURES, Evaluation
from sijill.targeting.jobs import EVALUATE_JOB

TABLES = ("measures", "roc", "designs", "parameters")
DATA_SUFFIX = ".parquet"
# Shares print as percentages; the CGH indicator and the AUC are not shares.
SHARES = frozenset(MEASURES) - {"cgh", "auc"}
# The columns a table of measures shows, in order, with their headings (marked for the
# catalogs: the pages show them translated, the offline report in English).
HEADINGS = {
    "households": N_("Households"),
    "selected_share": N_("Selected (households)"),
    "inclusion_error": N_("Inclusion error"),
    "exclusion_error": N_("Exclusion error"),
    "coverage_poor": N_("Coverage of the poor"),
    "coverage_poorest_quintile": N_("Coverage of the poorest fifth"),
    "leakage": N_("Leakage"),
    "cgh": N_("CGH"),
    "auc": N_("AUC"),
    "fgt0_reduction": N_("Headcount reduction (FGT0)"),
    "fgt1_reduction": N_("Poverty gap reduction (FGT1)"),
}


def parameters_table(evaluation: Evaluation) -> pl.DataFrame:
    rule = evaluation.rule
    rows = {
        "selection": "coverage" if rule.coverage is not None else "budget",
        "coverage": "" if rule.coverage is None else repr(rule.coverage),
        "budget": "" if rule.budget is None else str(rule.budget),
        "transfer": str(rule.transfer),
        "transfer_per": "person" if rule.per_person else "household",
        "poor": "below the poverty line"
        if evaluation.poverty_line is not None
        else "poorest fifth of persons",
        "poverty_line": "" if evaluation.poverty_line is None else str(evaluation.poverty_line),
        "line_used": repr(evaluation.line),
        "min_cell": str(evaluation.min_cell),
        "groups": ", ".join(evaluation.groups),
    }
    return pl.DataFrame({"parameter": list(rows), "value": list(rows.values())})


def tables(evaluation: Evaluation) -> dict[str, pl.DataFrame]:
    return {
        "measures": evaluation.measures,
        "roc": evaluation.roc,
        "designs": evaluation.designs,
        "parameters": parameters_table(evaluation),
    }


def overall(measures: pl.DataFrame) -> pl.DataFrame:
    return measures.filter(pl.col("group") == ALL)


def by_group(measures: pl.DataFrame, design: str) -> pl.DataFrame:
    return measures.filter((pl.col("design") == design) & (pl.col("group") != ALL))


def exclusion_side_by_side(measures: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, str]]:
    """The exclusion error by group, one column per design, and each column's design name."""
    names = measures["design"].unique(maintain_order=True).to_list()
    # Pivoted under positional names: a design called "group" or "cell" stays a column.
    keys = {name: f"design_{i}" for i, name in enumerate(names)}
    wide = (
        measures.filter(pl.col("group") != ALL)
        .with_columns(pl.col("design").replace_strict(keys))
        .pivot(on="design", index=["group", "cell", "suppressed"], values="exclusion_error")
    )
    return wide, {key: name for name, key in keys.items()}


def write_data(evaluation_tables: dict[str, pl.DataFrame], folder: Path) -> None:
    for name, frame in evaluation_tables.items():
        frame.write_parquet(folder / f"{name}{DATA_SUFFIX}")


def read_tables(folder: Path) -> dict[str, pl.DataFrame]:
    """The tables of the report in `folder`, as written."""
    paths = {name: folder / f"{name}{DATA_SUFFIX}" for name in TABLES}
    if not all(path.is_file() for path in paths.values()):
        raise NotFound("This evaluation's report holds no tables")
    return {name: pl.read_parquet(path) for name, path in paths.items()}


def evaluation_folder(
    session: Session, principal: Principal, work_dir: Path, job_id: int, action: str
) -> tuple[Job, Path]:
    """The evaluation job the principal may see (its starter, or a national administrator)
    and its report's folder; NotFound, audited as `action`, for anything else."""
    job = get_visible(session, principal, job_id, action)
    folder = Path(job.result_path).resolve() if job.result_path else None
    inside = folder is not None and folder.is_relative_to(work_dir.resolve())
    if job.kind != EVALUATE_JOB or not inside or not folder.is_dir():
        raise NotFound(f"Job {job.id} has no report")
    return job, folder
