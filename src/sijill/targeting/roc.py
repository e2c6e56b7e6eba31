"""ROC curves of a ranking against poor or not, and their AUC, for every cell of a split at once.

Weighted (each household counts its persons) and exact with ties: households with the same key
form one step of the curve, a diagonal one when it holds poor and non-poor persons, which is
what makes a tie count half in the AUC (the Mann-Whitney statistic with ties). One sort per
ranking and split, then cumulative sums per cell: no loop over households or cells, so a
registry's millions of households take seconds.
"""

import numpy as np
import polars as pl


def ranking_order(key: np.ndarray) -> np.ndarray:
    """Households by key, unscored (NaN) last."""
    return np.argsort(key, kind="stable")


def roc_by_cell(
    key: np.ndarray,
    poor: np.ndarray,
    other: np.ndarray,
    cells: np.ndarray,
    labels: list[str],
    points: int,
    by_key: np.ndarray | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The AUC of each cell (`cell`, `auc`) and its ROC curve (`cell`, `step`, `fpr`, `tpr`,
    from (0, 0) to (1, 1)) thinned to about `points` steps.

    `key`: lower is ranked first; NaN is unscored, ranked last as one tie. `poor` and `other`:
    each household's persons who are poor and who are not (one of the two is 0). `cells`: the
    index of each household's cell in `labels`. A cell without poor or without non-poor
    persons has no curve. `by_key` is `ranking_order(key)`, when the caller keeps it for
    several splits."""
    key = np.where(np.isnan(key), np.inf, key)
    by_key = ranking_order(key) if by_key is None else by_key
    # Cells are small integers: a stable sort of them keeps the key order inside each cell.
    order = by_key[np.argsort(cells[by_key].astype(np.min_scalar_type(len(labels))), kind="stable")]
    ranked_key, ranked_cell = key[order], cells[order]
    new_step = np.ones(len(order), dtype=bool)
    new_step[1:] = (ranked_key[1:] != ranked_key[:-1]) | (ranked_cell[1:] != ranked_cell[:-1])
    starts = np.flatnonzero(new_step)
    step_poor = np.add.reduceat(poor[order], starts)
    step_other = np.add.reduceat(other[order], starts)
    step_cell = ranked_cell[starts]
    first = np.ones(len(starts), dtype=bool)
    first[1:] = step_cell[1:] != step_cell[:-1]
    last = np.append(first[1:], True)
    cell_starts = np.flatnonzero(first)
    index = np.cumsum(first) - 1  # each step's cell, among the cells present
    cum_poor, cum_other = np.cumsum(step_poor), np.cumsum(step_other)
    # Sums restart in each cell: subtract what the cells before it accumulated.
    cum_poor -= np.append(0.0, cum_poor)[cell_starts][index]
    cum_other -= np.append(0.0, cum_other)[cell_starts][index]
    total_poor = np.add.reduceat(step_poor, cell_starts)
    total_other = np.add.reduceat(step_other, cell_starts)
    valid = (total_poor > 0) & (total_other > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pairs = np.add.reduceat(step_other * (cum_poor - step_poor / 2), cell_starts)
        auc = pairs / (total_poor * total_other)
        fpr = np.where(last, 1.0, cum_other / total_other[index])
        tpr = np.where(last, 1.0, cum_poor / total_poor[index])
        share = (cum_poor + cum_other) / (total_poor + total_other)[index]
    bucket = np.floor(share * points)
    keep = (first | last | (bucket != np.append(-1.0, bucket[:-1]))) & valid[index]
    names = np.asarray(labels, dtype=object)
    cell_names = names[step_cell[cell_starts]]
    step = np.arange(len(starts)) - cell_starts[index] + 1
    curve = pl.DataFrame(
        {
            "cell": pl.Series(names[step_cell[keep]].tolist(), dtype=pl.String),
            "step": step[keep],
            "fpr": fpr[keep],
            "tpr": tpr[keep],
        }
    )
    origin = pl.DataFrame(
        {
            "cell": pl.Series(cell_names[valid].tolist(), dtype=pl.String),
            "step": np.zeros(int(valid.sum()), dtype=step.dtype),
            "fpr": np.zeros(int(valid.sum())),
            "tpr": np.zeros(int(valid.sum())),
        }
    )
    areas = pl.DataFrame(
        {"cell": pl.Series(cell_names[valid].tolist(), dtype=pl.String), "auc": auc[valid]}
    )
    return areas, pl.concat([origin, curve])
