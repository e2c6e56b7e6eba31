"""An Alkire-Foster configuration: dimensions, indicators, weights and the poverty cut-off k.

Read from YAML or JSON through `sijill.core.files` and checked whole: every problem is named
by the file, the key path (`dimensions[1].indicators[2].deprived_when`) and the reason, all
of them at once. Weights may be written as fractions (`1/3`) so that thirds add up exactly.

An indicator the registry does not hold is kept in the file, marked `absent: true` with the
reason, so the document still says what the measure leaves out. The present indicators of a
dimension share its weight (in proportion to their own `weight`, equal shares by default); a
dimension with no indicator present is dropped and the other dimensions' weights are scaled
to sum to 1. This is what national MPIs built on administrative registries do when a
dimension cannot be measured, and it changes what the index means: say so when publishing.
"""

import hashlib
import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from sijill.core.errors import FieldError, InvalidInput
from sijill.core.files import read_json, read_yaml
from sijill.registry.codes import HOUSEHOLD_CODES
from sijill.targeting.expressions import Expression, ExpressionError, check, feature_columns

DEFAULT_CONFIG = Path(__file__).with_name("mpi_global.yaml")
LANGUAGES = ("ar", "fr", "en")
IF_NULL = ("not_deprived", "deprived", "exclude")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")
# Decimal weights such as 0.333 are accepted within this much of 1; fractions add up exactly.
_TOLERANCE = Fraction(1, 10**6)
# Identification is exact in integer units of 1/denominator; past this the units overflow.
_MAX_DENOMINATOR = 10**12
_TOP_KEYS = {"name", "title", "source", "notes", "k", "dimensions"}
_DIMENSION_KEYS = {"name", "labels", "weight", "indicators"}
_INDICATOR_KEYS = {
    "name",
    "labels",
    "weight",
    "deprived_when",
    "if_null",
    "absent",
    "reason",
    "definition",
}


class MpiConfigError(InvalidInput):
    """A configuration that cannot be used; `errors` holds every problem found."""


@dataclass(frozen=True)
class Indicator:
    name: str
    dimension: str
    labels: dict[str, str]
    definition: str | None
    absent: bool
    reason: str | None
    deprived_when: Expression | None  # None when absent
    if_null: str
    weight: Fraction  # in the index, after renormalisation; 0 when absent or dropped


@dataclass(frozen=True)
class Dimension:
    name: str
    labels: dict[str, str]
    configured_weight: Fraction
    weight: Fraction  # after dropping dimensions without any indicator present
    indicators: tuple[Indicator, ...]

    @property
    def dropped(self) -> bool:
        return self.weight == 0


@dataclass(frozen=True)
class MpiConfig:
    name: str
    source: str  # the file's name, or what the caller said
    k: Fraction
    dimensions: tuple[Dimension, ...]
    document: dict  # as read, to be recorded with every run

    @property
    def indicators(self) -> tuple[Indicator, ...]:
        """The indicators that count, in the file's order."""
        return tuple(i for d in self.dimensions for i in d.indicators if i.weight > 0)

    @property
    def denominator(self) -> int:
        """The common denominator of k and every weight: deprivation scores are whole numbers
        of this unit, so "c_i >= k" is decided exactly."""
        return math.lcm(self.k.denominator, *(i.weight.denominator for i in self.indicators))

    @property
    def digest(self) -> str:
        text = json.dumps(self.document, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        """The configuration as used: effective weights, dropped dimensions, absent indicators
        and why (JSON-ready; the weights also as fractions, exactly)."""
        return {
            "name": self.name,
            "source": self.source,
            "k": float(self.k),
            "k_fraction": str(self.k),
            "dimensions": [
                {
                    "name": d.name,
                    "labels": d.labels,
                    "configured_weight": float(d.configured_weight),
                    "weight": float(d.weight),
                    "dropped": d.dropped,
                    "indicators": [
                        {
                            "name": i.name,
                            "labels": i.labels,
                            "definition": i.definition,
                            "absent": i.absent,
                            "reason": i.reason,
                            "deprived_when": i.deprived_when.text if i.deprived_when else None,
                            "if_null": i.if_null,
                            "weight": float(i.weight),
                            "weight_fraction": str(i.weight),
                        }
                        for i in d.indicators
                    ],
                }
                for d in self.dimensions
            ],
        }


def load_config(
    path: Path | None = None,
    columns: Mapping[str, str] | None = None,
    codes: Mapping[str, Collection[str]] | None = None,
) -> MpiConfig:
    """Read and check a configuration file (YAML, or JSON by its suffix); the shipped global
    MPI when `path` is None. `columns` are what conditions may read (name ->
    number|boolean|text; the feature catalogue by default); `codes` the values of coded
    columns (the registry's household codes by default)."""
    path = path or DEFAULT_CONFIG
    columns = feature_columns() if columns is None else columns
    document = read_json(path) if path.suffix.lower() == ".json" else read_yaml(path)
    return parse_config(document, columns, codes, source=path.name)


def parse_config(
    document: Any,
    columns: Mapping[str, str],
    codes: Mapping[str, Collection[str]] | None = None,
    *,
    source: str = "configuration",
) -> MpiConfig:
    if codes is None:
        codes = {name: values for name, values in HOUSEHOLD_CODES.items() if name in columns}
    problems: list[FieldError] = []

    def problem(where: str, message: str) -> None:
        problems.append(FieldError(where, message))

    if not isinstance(document, dict):
        raise MpiConfigError(f"{source}: the document is not a mapping of keys to values")
    _unknown_keys(document, _TOP_KEYS, "", problem)
    name = _name(document.get("name"), "name", problem) or "mpi"
    k = _fraction(document.get("k"), "k", problem)
    if k is not None and not 0 < k <= 1:
        problem("k", f"must be above 0 and at most 1, not {_said(k)}")
    dimensions_in = document.get("dimensions")
    if not isinstance(dimensions_in, list) or not dimensions_in:
        problem("dimensions", "must be a non-empty list")
        dimensions_in = []
    parsed = []
    names: set[str] = set()
    for d, dimension in enumerate(dimensions_in):
        at = f"dimensions[{d}]"
        if not isinstance(dimension, dict):
            problem(at, "must be a mapping")
            continue
        _unknown_keys(dimension, _DIMENSION_KEYS, at, problem)
        dim_name = _name(dimension.get("name"), f"{at}.name", problem)
        if dim_name and dim_name in {p[1] for p in parsed}:
            problem(f"{at}.name", f"{dim_name} is already the name of another dimension")
        _labels(dimension.get("labels"), f"{at}.labels", problem)
        weight = _fraction(dimension.get("weight"), f"{at}.weight", problem)
        if weight is not None and weight <= 0:
            problem(f"{at}.weight", f"must be above 0, not {_said(weight)}")
        indicators = _indicators(dimension.get("indicators"), at, columns, codes, names, problem)
        parsed.append((dimension, dim_name, weight, indicators))
    weights = [w for _, _, w, _ in parsed]
    if parsed and all(w is not None for w in weights) and abs(sum(weights) - 1) > _TOLERANCE:
        problem("dimensions", f"the weights sum to {_said(sum(weights))}, not 1 (write 1/3)")
    kept = sum((w for _, _, w, ind in parsed if w and any(not i[1] for i in ind)), Fraction(0))
    if parsed and not problems and kept == 0:
        problem("dimensions", "no dimension has an indicator present")
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise MpiConfigError(f"{source}: {first.field}: {first.message}{more}", problems)
    dimensions = []
    for dimension, dim_name, weight, indicators in parsed:
        present = [item for item in indicators if not item[1]]
        dim_weight = weight / kept if present else Fraction(0)
        share_total = sum((item[2] for item in present), Fraction(0))
        dimensions.append(
            Dimension(
                name=dim_name,
                labels=dict(dimension["labels"]),
                configured_weight=weight,
                weight=dim_weight,
                indicators=tuple(
                    Indicator(
                        name=ind_name,
                        dimension=dim_name,
                        labels=dict(raw["labels"]),
                        definition=raw.get("definition"),
                        absent=absent,
                        reason=raw.get("reason"),
                        deprived_when=expression,
                        if_null=raw.get("if_null", "not_deprived"),
                        weight=Fraction(0) if absent else dim_weight * share / share_total,
                    )
                    for raw, absent, share, ind_name, expression in indicators
                ),
            )
        )
    config = MpiConfig(name, source, k, tuple(dimensions), document)
    total = sum((i.weight for i in config.indicators), Fraction(0))
    if total != 1 or config.denominator > _MAX_DENOMINATOR:
        # Only decimal weights of absurd precision get here; fractions always sum to 1.
        raise MpiConfigError(f"{source}: dimensions: the weights cannot be renormalised to 1")
    return config


def _indicators(raw, at, columns, codes, names, problem) -> list[tuple]:
    """(raw, absent, share of the dimension, name, expression) per indicator."""
    if not isinstance(raw, list) or not raw:
        problem(f"{at}.indicators", "must be a non-empty list")
        return []
    result = []
    shares = [isinstance(i, dict) and "weight" in i for i in raw]
    if any(shares) and not all(shares):
        problem(f"{at}.indicators", "give every indicator a weight, or none (equal shares)")
    for j, indicator in enumerate(raw):
        where = f"{at}.indicators[{j}]"
        if not isinstance(indicator, dict):
            problem(where, "must be a mapping")
            continue
        _unknown_keys(indicator, _INDICATOR_KEYS, where, problem)
        name = _name(indicator.get("name"), f"{where}.name", problem)
        if name and name in names:
            problem(f"{where}.name", f"{name} is already the name of another indicator")
        names.add(name)
        _labels(indicator.get("labels"), f"{where}.labels", problem)
        share = Fraction(1)
        if "weight" in indicator:
            share = _fraction(indicator["weight"], f"{where}.weight", problem) or Fraction(1)
            if share <= 0:
                problem(f"{where}.weight", f"must be above 0, not {_said(share)}")
        absent = indicator.get("absent", False)
        if not isinstance(absent, bool):
            problem(f"{where}.absent", "must be true or false")
            absent = False
        expression = None
        if absent:
            if not isinstance(indicator.get("reason"), str) or not indicator["reason"].strip():
                problem(f"{where}.reason", "say why the indicator is absent")
            if "deprived_when" in indicator:
                problem(f"{where}.deprived_when", "an absent indicator has no condition")
        else:
            expression = _condition(indicator.get("deprived_when"), where, columns, codes, problem)
            if_null = indicator.get("if_null", "not_deprived")
            if if_null not in IF_NULL:
                problem(f"{where}.if_null", f"must be one of {', '.join(IF_NULL)}")
        result.append((indicator, absent, share, name, expression))
    if shares and all(shares):
        total = sum((item[2] for item in result), Fraction(0))
        if result and abs(total - 1) > _TOLERANCE:
            problem(f"{at}.indicators", f"the weights sum to {_said(total)}, not 1")
    return result


def _condition(text, where, columns, codes, problem) -> Expression | None:
    if not isinstance(text, str):
        problem(f"{where}.deprived_when", "must be an expression over the feature columns")
        return None
    try:
        return check(text, columns, expect="boolean", codes=codes)
    except ExpressionError as error:
        problem(f"{where}.deprived_when", str(error))
        return None


def _unknown_keys(mapping: dict, allowed: set[str], at: str, problem) -> None:
    for key in mapping:
        if key not in allowed:
            prefix = f"{at}." if at else ""
            problem(f"{prefix}{key}", f"unknown key (known: {', '.join(sorted(allowed))})")


def _name(value: Any, at: str, problem) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        problem(at, "must be a name of lower-case letters, digits and _ (at most 48)")
        return ""
    return value


def _labels(value: Any, at: str, problem) -> None:
    if not isinstance(value, dict):
        problem(at, f"must give a label in each of {', '.join(LANGUAGES)}")
        return
    for language in LANGUAGES:
        label = value.get(language)
        if not isinstance(label, str) or not label.strip():
            problem(f"{at}.{language}", "is missing")


def _fraction(value: Any, at: str, problem) -> Fraction | None:
    """A number, or a fraction written `1/3`; decimals are read as written (0.1 is 1/10)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        problem(at, "must be a number or a fraction such as 1/3")
        return None
    try:
        result = Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError, OverflowError):
        problem(at, "must be a number or a fraction such as 1/3")
        return None
    return result


def _said(value: Fraction) -> str:
    return str(round(float(value), 6))
