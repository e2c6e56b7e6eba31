"""Dated, referenced parameters (OpenFisca style): a threshold or an amount is data with the
date it took effect and the source that says so, never a bare constant in code.

A parameter file is YAML, one parameter per file:

    description: What the value means, in one sentence.
    unit: level                      # what the number counts (currency codes for amounts)
    reference: The document that sets it, with its section.
    values:
      2006-01-01:
        value: 3
        reference: optional, where this particular value comes from

`value_at(date)` answers the value in force on that date, so a decision can be replayed with
the rule of its day. A bad file fails with the file's name and the field in the message.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

from sijill.core.errors import InvalidInput
from sijill.core.files import read_yaml

Value = int | Decimal | str | bool


@dataclass(frozen=True)
class DatedValue:
    start: dt.date
    value: Value
    reference: str | None = None


@dataclass(frozen=True)
class Parameter:
    name: str
    description: str
    unit: str
    reference: str
    values: tuple[DatedValue, ...]  # oldest first

    def value_at(self, on: dt.date) -> Value:
        """The value in force on `on`: the latest one that started on or before it."""
        current = None
        for dated in self.values:
            if dated.start > on:
                break
            current = dated
        if current is None:
            raise InvalidInput(
                f"parameter {self.name} has no value before {self.values[0].start.isoformat()} "
                f"(asked for {on.isoformat()})"
            )
        return current.value

    def in_force(self, on: dt.date) -> DatedValue:
        """The dated value in force on `on`, with its own reference: what a decision records."""
        for dated in reversed(self.values):
            if dated.start <= on:
                return dated
        raise InvalidInput(f"parameter {self.name} has no value on {on.isoformat()}")


def _number(value: object) -> Value:
    # Floats never enter: YAML's 0.1 is read back through its text as an exact Decimal.
    if isinstance(value, float):
        return Decimal(str(value))
    return value  # type: ignore[return-value]


def load_parameter(path: Path) -> Parameter:
    return parse_parameter(path.stem, read_yaml(path), path.name)


def parse_parameter(name: str, data: object, where: str) -> Parameter:
    """A parameter from its mapping (a file's, or one inside a program spec); `where` prefixes
    every error so the reader finds the place."""
    if not isinstance(data, dict):
        raise InvalidInput(f"{where}: a parameter is a mapping of fields")
    for field in ("description", "unit", "reference", "values"):
        if not data.get(field):
            raise InvalidInput(f"{where}: the field '{field}' is missing or empty")
    if not isinstance(data["values"], dict):
        raise InvalidInput(f"{where}: 'values' maps start dates to values")
    values = []
    for start, entry in data["values"].items():
        if not isinstance(start, dt.date):
            raise InvalidInput(f"{where}: values: '{start}' is not a date (YYYY-MM-DD)")
        if isinstance(entry, dict):
            if "value" not in entry:
                raise InvalidInput(f"{where}: values: {start}: the field 'value' is missing")
            values.append(DatedValue(start, _number(entry["value"]), entry.get("reference")))
        else:
            values.append(DatedValue(start, _number(entry)))
    values.sort(key=lambda dated: dated.start)
    return Parameter(
        name=name,
        description=str(data["description"]),
        unit=str(data["unit"]),
        reference=str(data["reference"]),
        values=tuple(values),
    )


@cache
def parameters_in(folder: Path) -> dict[str, Parameter]:
    """Every parameter of a folder, by file name (without `.yaml`)."""
    return {path.stem: load_parameter(path) for path in sorted(folder.glob("*.yaml"))}
