"""A targeting evaluation written out: one HTML file a ministry can open offline, its charts as
PNG files, and its tables as CSV files and one XLSX workbook, and as Parquet for the pages that
show it later (`targeting.report_tables`).

The HTML holds everything it shows: styles inline, charts as base64 PNG `data:` images drawn
with matplotlib's Agg canvas (no display, no pyplot state shared between threads), no script
and no address outside the file, so it opens the same without a network and leaks nothing when
opened. Its text is English (`lang="en"`); names that come from the data (designs, area codes)
are isolated (`<bdi>`) so an Arabic name keeps its direction inside an English sentence.

Text cells leaving for a spreadsheet (CSV and XLSX) go through `core.outgoing.spreadsheet_cell`:
a design named `=HYPERLINK(...)` is shown, never run.

The folder is written beside its destination under a hidden name and renamed into place when
complete: a crash leaves no half-written report.
"""

import base64
import html
import io
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from openpyxl import Workbook

from sijill.core.errors import Conflict, InvalidInput
from sijill.core.i18n.formats import format_amount, format_number
from sijill.core.outgoing import spreadsheet_cell
from sijill.targeting.evaluation import ALL, DEFINITIONS, Evaluation
from sijill.targeting.report_tables import (
    DATA_SUFFIX,
    HEADINGS,
    SHARES,
    exclusion_side_by_side,
    tables,
    write_data,
)

HTML_FILE = "report.html"
WORKBOOK = "tables.xlsx"
_LANG = "en"
_PERCENT = "#,##0.0%"
_STYLE = """
body{font-family:system-ui,'Noto Sans','Noto Sans Arabic',sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem}
td.n{text-align:end;font-variant-numeric:tabular-nums}
th{background:#f2f2f2}img{max-width:100%;height:auto}dt{font-weight:bold;margin-top:.5rem}
.hidden{color:#888;font-style:italic}
"""


@dataclass(frozen=True)
class ReportFiles:
    folder: Path
    files: tuple[str, ...]


def write_report(
    evaluation: Evaluation,
    out_dir: Path,
    *,
    title: str = "Targeting evaluation",
    currency: str | None = None,
    force: bool = False,
) -> ReportFiles:
    """Write the HTML report, the PNG charts, the CSV tables and the XLSX workbook into
    `out_dir`, which must not exist, be empty, or (with `force`) hold an earlier report."""
    out_dir = Path(out_dir)
    _check_target(out_dir, force=force)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.partial-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        charts = _charts(evaluation)
        for name, png in charts.items():
            (staging / name).write_bytes(png)
        frames = tables(evaluation)
        for name, frame in frames.items():
            _for_spreadsheet(frame).write_csv(staging / f"{name}.csv")
        _write_workbook(frames, staging / WORKBOOK)
        write_data(frames, staging)
        page = _html(evaluation, charts, title=title, currency=currency)
        (staging / HTML_FILE).write_text(page, encoding="utf-8")
        files = tuple(sorted(entry.name for entry in staging.iterdir()))
        _move_into_place(staging, out_dir)
    except BaseException:
        # Ctrl-C included: nothing half-written stays behind.
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ReportFiles(folder=out_dir, files=files)


def _check_target(out_dir: Path, *, force: bool) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise InvalidInput(f"{out_dir} is a file, not a folder")
    present = sorted(entry.name for entry in out_dir.iterdir())
    if present and not force:
        raise Conflict(f"{out_dir} is not empty: choose a new folder, or force to replace a report")
    ours = (HTML_FILE, WORKBOOK)
    kept = (".png", ".csv", DATA_SUFFIX)
    foreign = [name for name in present if not name.endswith(kept) and name not in ours]
    if foreign:
        # Replacing only ever removes an earlier report, never a folder kept for other things.
        raise Conflict(f"{out_dir} holds files that are not part of a report: choose a new folder")


def _move_into_place(staging: Path, out_dir: Path) -> None:
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    previous = out_dir.parent / f".{out_dir.name}.replaced-{secrets.token_hex(4)}"
    out_dir.rename(previous)
    try:
        staging.rename(out_dir)
    except BaseException:
        previous.rename(out_dir)
        raise
    shutil.rmtree(previous, ignore_errors=True)


# --- tables --------------------------------------------------------------------------------


def _for_spreadsheet(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text cell neutralised; few distinct texts (design names, codes), so mapped once."""
    texts = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(
        pl.col(name).replace(
            {text: spreadsheet_cell(text) for text in frame[name].drop_nulls().unique()}
        )
        for name in texts
    )


def _write_workbook(tables: dict[str, pl.DataFrame], path: Path) -> None:
    book = Workbook(write_only=True)
    for name, frame in tables.items():
        sheet = book.create_sheet(name)
        sheet.append(frame.columns)
        for row in _for_spreadsheet(frame).iter_rows():
            sheet.append(list(row))
    book.save(path)


# --- charts --------------------------------------------------------------------------------


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    # No Software tag: the PNG names no website, like the page it is embedded in.
    figure.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    return buffer.getvalue()


def _chart_name(index: int, prefix: str) -> str:
    # By position, not by design name: a name from the user never becomes a path.
    return f"{prefix}_{index + 1}.png"


def _charts(evaluation: Evaluation) -> dict[str, bytes]:
    charts = {
        "roc.png": _roc_chart(evaluation),
        "poverty_reduction.png": _poverty_chart(evaluation),
    }
    for index, design in enumerate(evaluation.designs["design"]):
        charts[_chart_name(index, "exclusion_by_group")] = _exclusion_chart(evaluation, design)
    return charts


def _roc_chart(evaluation: Evaluation) -> bytes:
    figure = Figure(figsize=(6, 6))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    overall = evaluation.roc.filter(pl.col("group") == ALL)
    for design in evaluation.designs["design"]:
        curve = overall.filter(pl.col("design") == design)
        if curve.height:
            axes.plot(curve["fpr"], curve["tpr"], label=design)
    axes.set_xlabel("Persons not poor, ranked in (false positive rate)")
    axes.set_ylabel("Poor persons ranked in (true positive rate)")
    axes.set_title("ROC curves, all households")
    # A little room around the unit square, so a curve along an edge stays visible.
    axes.set_xlim(-0.02, 1.02)
    axes.set_ylim(-0.02, 1.02)
    axes.legend(loc="lower right")
    return _png(figure)


def _exclusion_chart(evaluation: Evaluation, design: str) -> bytes:
    # Hidden cells, and cells without poor persons (no exclusion to measure), are left out.
    rows = evaluation.measures.filter(
        (pl.col("design") == design)
        & (pl.col("group") != ALL)
        & pl.col("exclusion_error").is_not_null()
    )
    overall = evaluation.measures.filter((pl.col("design") == design) & (pl.col("group") == ALL))
    labels = [f"{group}: {cell}" for group, cell in rows.select("group", "cell").iter_rows()]
    values = rows["exclusion_error"].to_list()
    figure = Figure(figsize=(7, max(2.5, 0.3 * len(labels) + 1.2)))
    axes = figure.add_subplot()
    axes.barh(range(len(labels)), values, color="#c0504d")
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.invert_yaxis()
    if overall.height and overall["exclusion_error"][0] is not None:
        axes.axvline(overall["exclusion_error"][0], color="black", linestyle="--", label="all")
        axes.legend(loc="lower right")
    axes.set_xlim(0, 1)
    axes.set_xlabel("Exclusion error (share of poor persons not selected)")
    axes.set_title(f"Exclusion error by group: {design}")
    figure.tight_layout()
    return _png(figure)


def _poverty_chart(evaluation: Evaluation) -> bytes:
    overall = evaluation.measures.filter(pl.col("group") == ALL)
    designs = overall["design"].to_list()
    figure = Figure(figsize=(7, 4))
    axes = figure.add_subplot()
    positions = range(len(designs))
    fgt0 = [100 * (value or 0.0) for value in overall["fgt0_reduction"]]
    fgt1 = [100 * (value or 0.0) for value in overall["fgt1_reduction"]]
    axes.bar([p - 0.2 for p in positions], fgt0, width=0.4, label="headcount (FGT0)")
    axes.bar([p + 0.2 for p in positions], fgt1, width=0.4, label="poverty gap (FGT1)")
    axes.set_xticks(list(positions), designs)
    axes.set_ylabel("Reduction, percentage points")
    axes.set_title("Poverty reduction the transfers buy")
    axes.legend()
    figure.tight_layout()
    return _png(figure)


# --- the page ------------------------------------------------------------------------------


def _number(column: str, shares: set[str] | frozenset[str]) -> Callable[[object], str]:
    def formatted(value: object) -> str:
        if value is None:
            return ""
        if column in shares:
            return format_number(value, _LANG, format=_PERCENT)
        if column == "households":
            return format_number(value, _LANG)
        return format_number(value, _LANG, format="#,##0.000")

    return formatted


def _text(value: object) -> str:
    return f"<bdi>{html.escape(str(value))}</bdi>"


def _table(
    frame: pl.DataFrame,
    labels: list[str],
    columns: list[str],
    *,
    headings: dict[str, str] = HEADINGS,
    shares: frozenset[str] = SHARES,
) -> str:
    head = "".join(f"<th>{_text(headings.get(c, c))}</th>" for c in labels + columns)
    body = []
    for row in frame.iter_rows(named=True):
        cells = [f"<td>{_text(row[label])}</td>" for label in labels]
        if row.get("suppressed"):
            hidden = '<td class="hidden" colspan="{}">hidden (small cell)</td>'
            cells.append(hidden.format(len(columns)))
        else:
            cells += [f'<td class="n">{_number(c, shares)(row[c])}</td>' for c in columns]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _money(amount: Decimal, currency: str | None) -> str:
    if currency:
        return format_amount(amount, currency, _LANG)
    return format_number(amount, _LANG, format="#,##0.###")


def _html(
    evaluation: Evaluation, charts: dict[str, bytes], *, title: str, currency: str | None
) -> str:
    rule, measures = evaluation.rule, evaluation.measures
    columns = list(HEADINGS)
    if rule.coverage is not None:
        size = f"coverage {format_number(rule.coverage, _LANG, format=_PERCENT)} of households"
    else:
        size = f"budget {_money(rule.budget, currency)}"
    line = (
        f"poverty line {format_number(evaluation.poverty_line, _LANG)}"
        if evaluation.poverty_line is not None
        else "the poorest fifth of persons (line: the lowest welfare outside it, "
        f"{format_number(evaluation.line, _LANG, format='#,##0.###')})"
    )
    per = "person" if rule.per_person else "household"
    spent = "".join(
        f"<li>{_text(design)}: {_money(amount, currency)} spent on "
        f"{format_number(households, _LANG, format='#,##0.#')} households</li>"
        for design, amount, households in evaluation.designs.select(
            "design", "spent", "selected_households"
        ).iter_rows()
    )
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Selection: {size}; transfer {_money(rule.transfer, currency)} per {per}. "
        f"Reference poor: {line}. Cells of fewer than {evaluation.min_cell} households are "
        "hidden, with the next smallest cell of their split.</p>",
        f"<ul>{spent}</ul>",
        "<h2>All households</h2>",
        _table(measures.filter(pl.col("group") == ALL), ["design"], columns),
        _image(charts["roc.png"], "ROC curves of the rankings"),
        _image(charts["poverty_reduction.png"], "Poverty reduction per design"),
        "<h2>Exclusion error by group, designs side by side</h2>",
        _side_by_side(measures),
    ]
    for index, design in enumerate(evaluation.designs["design"]):
        rows = measures.filter((pl.col("design") == design) & (pl.col("group") != ALL))
        parts += [
            f"<h2>By group: {_text(design)}</h2>",
            _table(rows, ["group", "cell"], columns),
            _image(charts[_chart_name(index, "exclusion_by_group")], "Exclusion error by group"),
        ]
    definitions = "".join(
        f"<dt>{html.escape(name)}</dt><dd>{html.escape(text)}</dd>"
        for name, text in DEFINITIONS.items()
    )
    parts += [f"<h2>Definitions</h2><dl>{definitions}</dl>"]
    return (
        f'<!DOCTYPE html>\n<html lang="{_LANG}" dir="ltr"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )


def _side_by_side(measures: pl.DataFrame) -> str:
    wide, headings = exclusion_side_by_side(measures)
    columns = list(headings)
    return _table(wide, ["group", "cell"], columns, headings=headings, shares=frozenset(columns))
