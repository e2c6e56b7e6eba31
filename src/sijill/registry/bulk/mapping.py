"""How an agency's own list maps onto the registry's fields (a YAML file, see
docs/import-mapping.md), and the text clean-up every source gets."""

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

from sijill.core.errors import InvalidInput
from sijill.core.files import read_yaml
from sijill.identity.digits import LOCAL_NUMBER_CHARACTERS, ascii_number_column
from sijill.registry.fields import EXCHANGE_FIELDS, exchange_field

DateOrder = Literal["dmy", "mdy", "auto"]


@dataclass
class Mapping:
    source: str | None = None
    sheet: str | None = None
    date_order: DateOrder = "dmy"
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str | None]] = field(default_factory=dict)  # None: missing
    defaults: dict[str, str] = field(default_factory=dict)


def load_mapping(path: Path, extra: Collection[str] = ()) -> Mapping:
    """The mapping in `path`; `extra` names columns beyond the registry's fields that the
    reader of this list takes (an outside list's own: `death_date`, `employer` ...)."""
    targets = EXCHANGE_FIELDS | frozenset(extra)
    raw = read_yaml(path) or {}
    if not isinstance(raw, dict):
        raise InvalidInput(f"{path.name}: a mapping is a YAML dictionary")
    problems: list[str] = []
    known = {"source", "sheet", "date_order", "columns", "values", "defaults"}
    problems += [f"unknown key '{key}'" for key in raw if key not in known]
    columns = {str(k): str(v) for k, v in (raw.get("columns") or {}).items()}
    problems += [
        f"columns: '{src}' maps to '{target}', which is not a registry field"
        for src, target in columns.items()
        if target not in targets
    ]
    values = {
        # An agency's "unknown" code maps to null (`UNK: null`): the value is missing.
        str(target): {str(k): None if v is None else str(v) for k, v in (codes or {}).items()}
        for target, codes in (raw.get("values") or {}).items()
    }
    problems += [f"values: '{t}' is not a registry field" for t in values if t not in targets]
    defaults = {str(k): str(v) for k, v in (raw.get("defaults") or {}).items()}
    problems += [f"defaults: '{t}' is not a registry field" for t in defaults if t not in targets]
    date_order = raw.get("date_order", "dmy")
    if date_order not in ("dmy", "mdy", "auto"):
        problems.append("date_order must be dmy, mdy or auto")
    if problems:
        raise InvalidInput(f"{path.name}: " + "; ".join(problems))
    return Mapping(
        source=raw.get("source"),
        sheet=raw.get("sheet"),
        date_order=date_order,
        columns=columns,
        values=values,
        defaults=defaults,
    )


def apply_mapping(
    frame: pl.DataFrame, mapping: Mapping, extra: dict[str, bool] | None = None
) -> pl.DataFrame:
    """Rename to registry fields, fill defaults, translate code values, clean text. `extra`:
    the columns beyond the registry's fields to keep, each saying whether it reads local
    digits as numbers (an amount, a date: True) or keeps its text as written (False)."""
    extra = extra or {}
    renamed = {src: target for src, target in mapping.columns.items() if src in frame.columns}
    frame = frame.rename(renamed)
    keep = [c for c in frame.columns if c in EXCHANGE_FIELDS or c in extra or c == "_row"]
    frame = frame.select(keep)
    for target, value in mapping.defaults.items():
        if target in frame.columns:
            frame = frame.with_columns(pl.col(target).fill_null(pl.lit(value)))
        else:
            frame = frame.with_columns(pl.lit(value, dtype=pl.String).alias(target))
    # Most columns of most sources need no cleaning: find, in one pass, the columns that hold
    # padding, empty text or a local digit or separator, and clean only those. Free text keeps
    # its own digits; identifiers are read by their own rules (sijill.identity) when checked.
    texts = [name for name in frame.columns if name != "_row"]
    coded = {name for name in texts if extra.get(name, False) or _reads_local_numbers(name)}
    local = LOCAL_NUMBER_CHARACTERS
    found = frame.select(
        *[pl.col(n).str.contains(r"^\s|\s$").any().alias(f"pad {n}") for n in texts],
        *[(pl.col(n) == "").any().alias(f"empty {n}") for n in texts],
        *[pl.col(n).str.contains(local).any().alias(f"local {n}") for n in coded],
    ).row(0, named=True)
    cleaned = []
    for name in texts:
        padded, empty = found[f"pad {name}"], found[f"empty {name}"]
        local_digits = found.get(f"local {name}", False)
        if not (padded or empty or local_digits or name in mapping.values):
            continue
        column = pl.col(name).str.strip_chars() if padded else pl.col(name)
        if local_digits:
            column = ascii_number_column(column)
        if padded or empty:
            column = pl.when(column == "").then(None).otherwise(column)
        if name in mapping.values:
            column = column.replace(mapping.values[name])
        cleaned.append(column.alias(name))
    return frame.with_columns(cleaned) if cleaned else frame


def _reads_local_numbers(name: str) -> bool:
    if name not in EXCHANGE_FIELDS:
        return False
    field = exchange_field(name)
    return not (field.as_written or field.own_digits_rule)


def unmapped_columns(header: list[str], mapping: Mapping) -> list[str]:
    return [
        c for c in header if c != "_row" and c not in mapping.columns and c not in EXCHANGE_FIELDS
    ]
