"""The area tree: administrative areas in a hierarchy with codes (country → governorate →
district → locality), loaded from a CSV, with optional GeoJSON polygons.

It lives in `core` because every layer scopes by it: users' grants (security), households
(registry), and every report and payment batch after them."""

from pathlib import Path

from sqlalchemy import Boolean, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from sijill.core.db import Base, Json
from sijill.core.errors import ErrorCollector
from sijill.core.files import read_json, read_table

AREA_LEVELS = ("country", "governorate", "district", "locality")


class Area(Base):
    __tablename__ = "area"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("area.id"), index=True)
    level: Mapped[str] = mapped_column(String(16))
    name_ar: Mapped[str | None] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    urban: Mapped[bool | None] = mapped_column(Boolean)
    geometry: Mapped[dict | None] = mapped_column(Json)


_TRUE = {"true", "1", "yes"}
_tree_changes = 0


def load_areas(session: Session, csv_path: Path, geojson_path: Path | None = None) -> int:
    """Insert or update areas by code; returns how many rows the file had. Parents come first
    in the hierarchy, whatever the file's order."""
    if geojson_path is None and csv_path.with_suffix(".geojson").exists():
        geojson_path = csv_path.with_suffix(".geojson")
    rows: list[dict] = []
    errors = ErrorCollector()
    for batch in read_table(csv_path, 10_000):
        rows += batch.rows.to_dicts()
        for number, reason in batch.rejects.select("row", "message").iter_rows():
            errors.add("line", reason, number)
    geometries = _geometries(geojson_path) if geojson_path else {}
    for row in rows:
        number = row["_row"]
        if not row.get("code"):
            errors.add("code", "is empty", number)
        if row.get("level") not in AREA_LEVELS:
            errors.add("level", f"must be one of {', '.join(AREA_LEVELS)}", number)
    codes = {row.get("code") for row in rows}
    existing = dict(session.execute(select(Area.code, Area)).all())
    for row in rows:
        number, parent = row["_row"], row.get("parent_code") or None
        if parent and parent not in codes and parent not in existing:
            errors.add("parent_code", f"'{parent}' is not an area in the file or registry", number)
    errors.raise_if_any(f"{csv_path.name}: the areas file has errors")
    for row in sorted(rows, key=lambda r: AREA_LEVELS.index(r["level"])):
        area = existing.get(row["code"]) or Area(code=row["code"])
        parent = row.get("parent_code") or None
        area.parent_id = existing[parent].id if parent else None
        area.level = row["level"]
        area.name_ar = row.get("name_ar") or None
        area.name_en = row.get("name_en") or None
        urban = (row.get("urban") or "").strip().lower()
        area.urban = (urban in _TRUE) if urban else None
        area.geometry = geometries.get(row["code"], area.geometry)
        session.add(area)
        session.flush()
        existing[row["code"]] = area
    global _tree_changes
    _tree_changes += 1  # a parent may have changed: expansions kept in this process are stale
    return len(rows)


def _geometries(path: Path) -> dict[str, dict]:
    data = read_json(path)
    if not isinstance(data, dict):
        return {}
    return {
        feature["properties"]["code"]: feature["geometry"]
        for feature in data.get("features", [])
        if feature.get("properties", {}).get("code")
    }


def areas_within(session: Session, roots: list[int]) -> list[int]:
    """These areas and every area below them, in one statement."""
    tree = select(Area.id).where(Area.id.in_(roots)).cte("area_tree", recursive=True)
    tree = tree.union_all(select(Area.id).where(Area.parent_id == tree.c.id))
    return list(session.scalars(select(tree.c.id)))


def tree_changes() -> int:
    """How many times this process has loaded areas: whoever keeps an expansion of the tree
    compares it to know the expansion may be stale."""
    return _tree_changes
