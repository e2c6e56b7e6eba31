"""Scoring pairs with a model: DuckDB in this process, the matching frame handed over as Arrow.

`score` trains a model on the records in hand (or takes a saved one), predicts every pair the
blocking rules let through above a threshold, and returns them with each comparison's level:
what a reviewer sees and what a merge records.
"""

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl
from splink import DuckDBAPI, Linker

from sijill.core.errors import InvalidInput
from sijill.linkage import model as linkage_model

# Fewer records than this teach EM too little: such a registry is scored with a saved model.
MIN_TRAINING_RECORDS = 1_000


@dataclass
class Scored:
    pairs: pl.DataFrame  # person_a_id < person_b_id, match_weight, match_probability, levels
    model: dict[str, Any]  # the saved form (`linkage.model.artifact`)


def _linker(frames: list[pl.DataFrame], settings) -> Linker:
    database = DuckDBAPI()
    tables = [
        database.register(frame.to_arrow(), table_name=f"records_{i}")
        for i, frame in enumerate(frames)
    ]
    # Splink reports each step at INFO; a command shows its own progress instead.
    return Linker(tables[0] if len(tables) == 1 else tables, settings, log_level=logging.WARNING)


def score(
    frames: list[pl.DataFrame],
    *,
    threshold: float,
    u_pairs: int,
    model: dict[str, Any] | None = None,
    stage: Callable[[str], None] = lambda _: None,
) -> Scored:
    """Pairs within one frame (dedup) or across two (link) scoring at least `threshold`; a
    model trained here learns u from `u_pairs` random pairs."""
    link_type = "dedupe_only" if len(frames) == 1 else "link_only"
    records = sum(frame.height for frame in frames)
    if model is None:
        if records < MIN_TRAINING_RECORDS:
            raise InvalidInput(
                f"{records:,} records are too few to train a linkage model (at least "
                f"{MIN_TRAINING_RECORDS:,}): pass a saved model with --model"
            )
        stage("training the model")
        linker = _linker(frames, linkage_model.settings(link_type))
        linkage_model.train(linker, u_pairs=u_pairs)
        model = linkage_model.artifact(linker.misc.save_model_to_json(), records=records)
    else:
        splink_settings = dict(model["splink"], link_type=link_type)
        linker = _linker(frames, splink_settings)
    if records == 0:
        return Scored(_empty(), model)
    stage("scoring pairs")
    predicted = linker.inference.predict(threshold_match_probability=threshold)
    # A table, not `.arrow()`'s batch reader: no pair at all must still give the columns.
    pairs = pl.from_arrow(predicted.as_duckdbpyrelation().to_arrow_table())
    return Scored(_with_levels(pairs, model), model)


def _empty() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "person_a_id": pl.Int64,
            "person_b_id": pl.Int64,
            "match_weight": pl.Float64,
            "match_probability": pl.Float64,
            "levels": pl.String,
        }
    )


def level_weights(model: dict[str, Any]) -> dict[str, list[tuple[float, str]]]:
    """comparison → (match weight, label) of each of its levels, from the model's m and u.
    The null level weighs 0 (it says nothing either way)."""
    weights = {}
    for comparison in model["splink"]["comparisons"]:
        levels = []
        for level in comparison["comparison_levels"]:
            label = level.get("label_for_charts") or level.get("sql_condition", "")
            if level.get("is_null_level"):
                levels.append((0.0, "missing"))
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            if m and u:
                levels.append((math.log2(m / u), label))
        weights[comparison["output_column_name"]] = levels
    return weights


def _level_of(weight: float, levels: list[tuple[float, str]]) -> str:
    return min(levels, key=lambda level: abs(level[0] - weight))[1] if levels else ""


def _with_levels(pairs: pl.DataFrame, model: dict[str, Any]) -> pl.DataFrame:
    """Splink gives each pair's weight per comparison (`mw_<name>`); the level it fell in is
    the one of that weight (no term-frequency adjustment moves weights off their levels)."""
    weights = level_weights(model)
    parts = [column.removeprefix("mw_") for column in pairs.columns if column.startswith("mw_")]
    left, right = pl.col("unique_id_l"), pl.col("unique_id_r")
    levels = [
        json.dumps(
            {
                name: {
                    "level": _level_of(weight, weights.get(name, [])),
                    "weight": round(weight, 2),
                }
                for name, weight in zip(parts, row, strict=True)
            },
            ensure_ascii=False,
        )
        for row in pairs.select(f"mw_{name}" for name in parts).iter_rows()
    ]
    return pairs.select(
        pl.min_horizontal(left, right).cast(pl.Int64).alias("person_a_id"),
        pl.max_horizontal(left, right).cast(pl.Int64).alias("person_b_id"),
        pl.col("match_weight").cast(pl.Float64),
        pl.col("match_probability").cast(pl.Float64),
        pl.Series("levels", levels, dtype=pl.String),
    ).sort("person_a_id", "person_b_id")
