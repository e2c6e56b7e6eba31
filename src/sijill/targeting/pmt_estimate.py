"""Estimating a proxy means test on survey rows, and validating it out of sample.

`rows` is the feature frame of the survey's households with three more columns: `_y` (log of
consumption per person), `_w` (the survey weight) and `_persons` (household size).

Variable selection is backward elimination by p-value: start from every candidate, drop the
feature whose coefficients are least distinguishable from zero (a code feature's levels are
tested together, by a Wald test), refit, and stop when every feature left has p < 0.05. It is
what PMT manuals describe and what a program officer can follow ("each proxy kept moves the
score by an amount the survey can tell from nothing"), and it tests a code's levels as one
proxy, where stepwise BIC would keep or drop levels one by one. p-values use
heteroskedasticity-robust (HC1) standard errors: the residual spread differs across groups of
households, and survey weights are sampling weights, not inverse variances.

The quantile regression (Brown, Ravallion & van de Walle 2018) predicts the tau-th quantile of
log consumption, tau being the share of persons below the poverty line; it keeps the proxies
the least squares selection kept. Weighted quantile regression is the unweighted one on rows
multiplied by their weight (the check function is positively homogeneous), which statsmodels'
QuantReg then solves; its standard errors are the kernel sandwich of those scaled rows.

Region models refit the selected proxies (without the governorate's own dummies) on each
governorate's households; a governorate with too few households is scored by the national
model.

The gradient-boosting model is a comparator only: its out-of-sample figures go in the
artifact, the model itself nowhere, since only a model a person can review may rank households.
"""

import warnings

import numpy as np
import polars as pl

# statsmodels, SciPy and scikit-learn are imported by the functions that fit, not here: every
# scoring run and program run imports this module (through the artifact's checks), and the
# three took seconds of each such command's start for a fit it never does.
from sijill.targeting.pmt_design import candidate_terms, design, independent, predict

Y, W, PERSONS = "_y", "_w", "_persons"
REGION_COLUMN = "governorate_code"
REGION_MIN_HOUSEHOLDS = 150
HOUSEHOLDS_PER_TERM = 3
COMPARED = ("wls", "quantile", "gradient_boosting")


def estimate(
    rows: pl.DataFrame,
    candidates: list[str],
    *,
    method: str,
    tau: float,
    regions: bool,
    p_value: float,
) -> dict:
    """The model (intercept, terms, reference levels, selection, region models) on these rows."""
    y, w = rows[Y].to_numpy(), rows[W].to_numpy()
    terms, references = candidate_terms(rows, w, candidates)
    terms, dropped = _select(rows, terms, y, w, p_value)
    intercept, terms = _fit(rows, terms, y, w, method, tau)
    model = {
        "intercept": intercept,
        "terms": terms,
        "reference_levels": {f: level for f, level in references.items() if _uses(terms, f)},
        "selection": {
            "method": "backward elimination by p-value (HC1), code levels tested together",
            "p_value": p_value,
            "candidates": candidates,
            "dropped": dropped,
        },
        "regions": _regions(rows, terms, method, tau) if regions else None,
    }
    return model


def _uses(terms: list[dict], feature: str) -> bool:
    return any(t["feature"] == feature for t in terms)


def _wls(y: np.ndarray, x: np.ndarray, w: np.ndarray):
    import statsmodels.api as sm

    design_ = sm.add_constant(x, has_constant="add")
    return sm.WLS(y, design_, weights=w).fit(cov_type="HC1")


def _quantile(y: np.ndarray, x: np.ndarray, w: np.ndarray, tau: float):
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, IterationLimitWarning

    design_ = sm.add_constant(x, has_constant="add")
    scale = w / w.mean()
    with warnings.catch_warnings():
        # A cycle or the iteration limit leaves a solution within a hair of the optimum.
        warnings.simplefilter("ignore", (ConvergenceWarning, IterationLimitWarning))
        return sm.QuantReg(y * scale, design_ * scale[:, None]).fit(q=tau, max_iter=5000)


def _estimable(rows: pl.DataFrame, terms: list[dict], w: np.ndarray):
    x = design(rows, terms)
    keep = independent(x, w)
    return [t for t, k in zip(terms, keep, strict=True) if k], x[:, keep]


def _select(rows, terms, y, w, p_value) -> tuple[list[dict], list[dict]]:
    terms, x = _estimable(rows, terms, w)
    dropped = []
    while terms and p_value < 1:
        result = _wls(y, x, w)
        worst, worst_p = None, p_value
        for feature in dict.fromkeys(t["feature"] for t in terms):
            columns = [i + 1 for i, t in enumerate(terms) if t["feature"] == feature]
            p = _group_p(result, columns)
            if p > worst_p:  # nan (a perfect fit) never compares greater: kept
                worst, worst_p = feature, p
        if worst is None:
            break
        keep = np.array([t["feature"] != worst for t in terms])
        terms, x = [t for t, k in zip(terms, keep, strict=True) if k], x[:, keep]
        dropped.append({"feature": worst, "p_value": float(worst_p)})
    return terms, dropped


def _group_p(result, columns: list[int]) -> float:
    if len(columns) == 1:
        return float(result.pvalues[columns[0]])
    restriction = np.zeros((len(columns), len(result.params)))
    restriction[np.arange(len(columns)), columns] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a singular robust covariance: pinv, as documented
        return float(result.wald_test(restriction, scalar=True, use_f=False).pvalue)


def _fit(rows, terms, y, w, method, tau) -> tuple[float, list[dict]]:
    terms, x = _estimable(rows, terms, w)
    result = _quantile(y, x, w, tau) if method == "quantile" else _wls(y, x, w)
    params, errors = np.asarray(result.params), np.asarray(result.bse)
    fitted = [
        {**t, "coefficient": float(params[i + 1]), "std_error": _number(errors[i + 1])}
        for i, t in enumerate(terms)
    ]
    return float(params[0]), fitted


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _regions(rows: pl.DataFrame, terms: list[dict], method: str, tau: float) -> dict:
    own = [{k: t[k] for k in ("feature", "level", "kind", "fill")} for t in terms]
    own = [t for t in own if t["feature"] != REGION_COLUMN]
    needed = max(REGION_MIN_HOUSEHOLDS, HOUSEHOLDS_PER_TERM * (len(own) + 1))
    models, national = [], []
    codes = rows[REGION_COLUMN]
    for code in sorted(codes.drop_nulls().unique().to_list()):
        part = rows.filter(codes == code)
        if part.height < needed:
            national.append(code)
            continue
        y, w = part[Y].to_numpy(), part[W].to_numpy()
        intercept, fitted = _fit(part, own, y, w, method, tau)
        models.append(
            {"code": code, "households": part.height, "intercept": intercept, "terms": fitted}
        )
    return {
        "column": REGION_COLUMN,
        "min_households": needed,
        "models": models,
        "national_model_for": national,
    }


def poor_share(rows: pl.DataFrame, log_line: float) -> float:
    """The weighted share of persons whose consumption is below the line."""
    persons = rows[W].to_numpy() * rows[PERSONS].to_numpy()
    below = rows[Y].to_numpy() < log_line
    return float(persons[below].sum() / persons.sum()) if persons.sum() > 0 else 0.0


def validate(
    rows: pl.DataFrame,
    candidates: list[str],
    *,
    tau: float,
    regions: bool,
    p_value: float,
    folds: int,
    seed: int,
) -> dict:
    """Out-of-sample figures of the three methods by k-fold cross-validation: every household
    is predicted once by the models fitted (selection included) on the other folds. Folds are a
    seeded permutation, so the figures are the same on every run."""
    n = rows.height
    k = max(2, min(folds, n))
    fold = np.random.default_rng(seed).permutation(n) % k
    predicted = {name: np.zeros(n) for name in COMPARED}
    for f in range(k):
        test = fold == f
        train, held = rows.filter(~test), rows.filter(test)
        for method in ("wls", "quantile"):
            model = estimate(
                train, candidates, method=method, tau=tau, regions=regions, p_value=p_value
            )
            predicted[method][test] = predict(model, held)
        predicted["gradient_boosting"][test] = _boosted(train, held, candidates, seed)
    y, w = rows[Y].to_numpy(), rows[W].to_numpy()
    figures = {name: _figures(y, predicted[name], w) for name in COMPARED}
    return {"folds": k, "seed": seed, "households": n, "out_of_sample": figures}


def _boosted(train: pl.DataFrame, held: pl.DataFrame, candidates: list[str], seed: int):
    w = train[W].to_numpy()
    terms, _ = candidate_terms(train, w, candidates)
    if not terms:  # nothing to split on: the mean is the best guess
        return np.full(held.height, np.average(train[Y].to_numpy(), weights=w))
    from sklearn.ensemble import HistGradientBoostingRegressor

    booster = HistGradientBoostingRegressor(
        learning_rate=0.05,
        max_iter=300,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )
    booster.fit(design(train, terms), train[Y].to_numpy(), sample_weight=w)
    return booster.predict(design(held, terms))


def _figures(y: np.ndarray, predicted: np.ndarray, w: np.ndarray) -> dict:
    """Weighted R² (against the weighted mean), root mean squared error (in log points) and
    the weighted correlation of ranks. The quantile model predicts a low quantile, not the
    mean, so its R² is low by design; what targeting uses is the ranking."""
    from scipy.stats import rankdata

    residual = float(np.sum(w * (y - predicted) ** 2))
    total = float(np.sum(w * (y - np.average(y, weights=w)) ** 2))
    return {
        "r2": 1.0 - residual / total if total > 0 else None,
        "rmse": float(np.sqrt(residual / w.sum())),
        "rank_correlation": _weighted_correlation(rankdata(y), rankdata(predicted), w),
    }


def _weighted_correlation(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> float | None:
    da, db = a - np.average(a, weights=w), b - np.average(b, weights=w)
    spread = np.sqrt(np.sum(w * da**2) * np.sum(w * db**2))
    return float(np.sum(w * da * db) / spread) if spread > 0 else None


def in_sample(rows: pl.DataFrame, model: dict) -> dict:
    return _figures(rows[Y].to_numpy(), predict(model, rows), rows[W].to_numpy())
