"""The proxy means test: fitted on a survey, written as an artifact a person reads and approves.

`fit` regresses the log of consumption per person on candidate proxies from the household
feature view (`pmt_estimate`: weighted least squares or quantile regression, variable
selection, optional region models) and validates it, and the two alternatives beside it, by
k-fold cross-validation. The result is the artifact: a plain dict, saved as JSON, that says
everything the score depends on (terms and coefficients, reference levels, missing-value
fills, region models, the features' definitions, the survey, the poverty line, the validation
figures, the feature catalogue's version). Its version is `pmt-` and the first 16 hex digits of
the SHA-256 of that content (the fitting date aside), so the same fit on the same survey gives
the same version and a changed artifact is caught (`check_artifact`).
"""

import hashlib
import json
import math
from collections.abc import Sequence
from decimal import Decimal

import polars as pl
from threadpoolctl import threadpool_limits

from sijill.core.clock import utcnow
from sijill.core.errors import InvalidInput
from sijill.targeting import features as catalogue
from sijill.targeting.pmt_design import candidate_terms, default_candidates
from sijill.targeting.pmt_estimate import (
    HOUSEHOLDS_PER_TERM,
    PERSONS,
    REGION_COLUMN,
    W,
    Y,
    estimate,
    in_sample,
    poor_share,
    validate,
)
from sijill.targeting.survey import CONSUMPTION, WEIGHT, Survey, too_few

FORMAT = "sijill-pmt/1"
METHODS = ("wls", "quantile")
_UNSIGNED = ("version", "fitted_at")


def fit(
    features: pl.DataFrame,
    survey: Survey,
    *,
    poverty_line: Decimal,
    method: str = "wls",
    candidates: Sequence[str] | None = None,
    regions: bool = False,
    p_value: float = 0.05,
    folds: int = 5,
    seed: int = 0,
) -> dict:
    """The PMT artifact fitted on `survey` with its households' `features` (the feature view:
    `survey.survey_features`). `poverty_line` is per person per year, in the survey's currency;
    it sets the quantile regression's tau. Refuses a survey too small for its candidates."""
    if method not in METHODS:
        raise InvalidInput(f"method must be one of {', '.join(METHODS)}: got {method!r}")
    line = Decimal(poverty_line)
    if not line.is_finite() or line <= 0:
        raise InvalidInput("the poverty line must be a number above zero")
    if not 0 < p_value <= 1:
        raise InvalidInput("p_value must be above 0 and at most 1")
    if folds < 2:
        raise InvalidInput("validation needs at least 2 folds")
    chosen = list(candidates) if candidates is not None else default_candidates(features)
    if regions and REGION_COLUMN not in features.columns:
        raise InvalidInput(f"region models need the feature {REGION_COLUMN}")
    rows = _rows(features, survey)
    terms, _ = candidate_terms(rows, rows[W].to_numpy(), chosen)
    needed = HOUSEHOLDS_PER_TERM * (len(terms) + 1)
    if rows.height < max(needed, folds):
        raise too_few(survey, rows.height, max(needed, folds), f"{len(terms) + 1} terms")
    tau = poor_share(rows, math.log(line))
    if not 0 < tau < 1:
        raise InvalidInput(
            f"{survey.name}: no household is on one side of the poverty line {line}; "
            "check the line and the survey's currency"
        )
    options = {"tau": tau, "regions": regions, "p_value": p_value}
    # Hundreds of small fits: threads only contend (tenfold slower on a busy machine).
    with threadpool_limits(limits=1):
        model = estimate(rows, chosen, method=method, **options)
        validation = validate(rows, chosen, folds=folds, seed=seed, **options)
    validation["in_sample"] = in_sample(rows, model)
    artifact = {
        "format": FORMAT,
        "method": method,
        "target": "natural log of consumption per person per year",
        **model,
        "features": _definitions(model),
        "catalogue_version": catalogue.catalogue_version(),
        "data_source": {
            "file": survey.name,
            "households": rows.height,
            "sum_of_weights": float(rows[W].sum()),
        },
        "poverty_line": {"per_person_per_year": str(line), "quantile": tau},
        "validation": validation,
        "fitted_at": utcnow().isoformat(),
    }
    artifact["version"] = version_of(artifact)
    return artifact


def version_of(artifact: dict) -> str:
    content = {k: v for k, v in artifact.items() if k not in _UNSIGNED}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "pmt-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def check_artifact(artifact: dict) -> None:
    """Refuse an artifact that is not a PMT model or was changed since it was fitted."""
    if not isinstance(artifact, dict) or artifact.get("format") != FORMAT:
        raise InvalidInput(f"not a Sijill PMT model (expected format {FORMAT})")
    if artifact.get("method") not in METHODS:
        raise InvalidInput(f"a PMT model's method is one of {', '.join(METHODS)}")
    if artifact.get("version") != version_of(artifact):
        raise InvalidInput(
            f"PMT model {artifact.get('version')}: its content does not match its version "
            "(changed since it was fitted)"
        )


def _rows(features: pl.DataFrame, survey: Survey) -> pl.DataFrame:
    if "household_id" not in features.columns or "hh_size" not in features.columns:
        raise InvalidInput("the feature frame needs household_id and hh_size")
    absent = survey.frame.join(features.select("household_id"), on="household_id", how="anti")
    if absent.height:
        rows = ", ".join(str(r) for r in absent["_row"].sort().head(5))
        raise InvalidInput(
            f"{survey.name}: household_key on rows {rows} has no features "
            f"(not in {survey.households_file.name}?)"
        )
    joined = survey.frame.join(features, on="household_id", how="inner")
    return joined.with_columns(
        pl.col(CONSUMPTION).log().alias(Y),
        pl.col(WEIGHT).alias(W),
        pl.col("hh_size").fill_null(0).cast(pl.Float64).alias(PERSONS),
    ).sort("household_id")


def _definitions(model: dict) -> list[dict]:
    used = [t["feature"] for t in model["terms"]]
    if model["regions"]:
        used.append(model["regions"]["column"])
        used += [t["feature"] for m in model["regions"]["models"] for t in m["terms"]]
    listed = []
    for name in sorted(set(used)):
        feature = catalogue.BY_NAME.get(name)
        listed.append(
            {
                "name": name,
                "type": feature.type if feature else None,
                "unit": feature.unit if feature else None,
                "definition": feature.definition if feature else None,
            }
        )
    return listed
