"""The reject lines of one import batch: what a data clerk reads to fix a row (row, record key,
field, value, message), gathered check by check and found in one pass."""

import polars as pl

ROW = "_row"
NOT_SHOWN = "_not_shown"  # a reject line's value naming no column is left empty
REJECT_SCHEMA = {
    "row": pl.Int64,
    "record_key": pl.String,
    "field": pl.String,
    "value": pl.String,
    "message": pl.String,
}


class Rejects:
    """Collects (row, key, field, value, message) for the rows of one frame.

    Checks are gathered first and evaluated together: one pass computes every check's mask
    (Polars spreads them over the cores), and only the checks some row fails build reject lines.
    """

    def __init__(self, frame: pl.DataFrame, key: str):
        self.frame = frame
        self.key = key
        self._checks: list[tuple[pl.Expr, str, pl.Expr, str]] = []
        self._found: pl.DataFrame | None = None

    def add(self, bad: pl.Expr, field: str, message: pl.Expr | str, value: str | None = None):
        message_expr = pl.lit(message) if isinstance(message, str) else message
        self._checks.append((bad.fill_null(False), field, message_expr, value or field))
        self._found = None

    def _lines(self, mask: str, field: str, message: pl.Expr, value: str) -> pl.DataFrame:
        columns = self.frame.columns
        value_expr = pl.col(value).cast(pl.String) if value in columns else pl.lit(None)
        key_expr = pl.col(self.key) if self.key in columns else pl.lit(None, dtype=pl.String)
        return (
            self.frame.with_columns(self._masks[mask])
            .filter(pl.col(mask))
            .select(
                pl.col(ROW).alias("row"),
                key_expr.alias("record_key"),
                pl.lit(field).alias("field"),
                value_expr.alias("value"),
                message.cast(pl.String).alias("message"),
            )
            .cast(REJECT_SCHEMA)
        )

    def frame_of_rejects(self) -> pl.DataFrame:
        if self._found is None:
            names = [f"__check{i}" for i in range(len(self._checks))]
            masks = self.frame.select(
                [bad.alias(name) for name, (bad, *_) in zip(names, self._checks, strict=True)]
            )
            self._masks = masks
            failing = masks.select(pl.all().any()).row(0) if names else ()
            parts = [
                self._lines(name, field, message, value)
                for name, hit, (_, field, message, value) in zip(
                    names, failing, self._checks, strict=True
                )
                if hit
            ]
            self._found = pl.concat(parts) if parts else pl.DataFrame(schema=REJECT_SCHEMA)
        return self._found

    def rejected_rows(self) -> pl.Series:
        return self.frame_of_rejects()["row"].unique()
