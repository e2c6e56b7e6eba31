"""A choropleth map drawn on the server: areas' GeoJSON polygons projected to an SVG viewBox,
and values sorted into five classes.

The projection is equirectangular with the longitude scaled by the cosine of the middle
latitude: for a country-sized area its distortion is far below what a map of classes can
show, and it needs no library. Points are snapped to the whole units of a 1000-unit-wide
viewBox and repeated points dropped, so a detailed boundary file costs no more than what the
map can draw (a unit is a tenth of a percent of the map's width).
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

WIDTH = 1000
CLASSES = 5
# Viridis, light to dark: a sequential palette that colour-blind readers and greyscale print
# tell apart, each step a distinct lightness.
PALETTE = ("#fde725", "#5ec962", "#21918c", "#3b528b", "#440154")

Value = int | Decimal


@dataclass
class Shape:
    key: str
    path: str  # the SVG path data, empty when the geometry has no drawable ring


@dataclass
class Map:
    width: int
    height: int
    shapes: list[Shape]


def _polygons(geometry: dict | None) -> list[list[list[Sequence[float]]]]:
    if not geometry:
        return []
    if geometry.get("type") == "Polygon":
        return [geometry.get("coordinates") or []]
    if geometry.get("type") == "MultiPolygon":
        return geometry.get("coordinates") or []
    return []


def project(geometries: Iterable[tuple[str, dict | None]]) -> Map:
    """Each geometry as SVG path data in one viewBox that holds them all."""
    items = [(key, _polygons(geometry)) for key, geometry in geometries]
    points = [
        (float(p[0]), float(p[1]))
        for _, polygons in items
        for polygon in polygons
        for ring in polygon
        for p in ring
    ]
    if not points:
        return Map(WIDTH, 0, [])
    west, east = min(p[0] for p in points), max(p[0] for p in points)
    south, north = min(p[1] for p in points), max(p[1] for p in points)
    squeeze = math.cos(math.radians((south + north) / 2))
    span = max((east - west) * squeeze, north - south, 1e-9)
    scale = WIDTH / span
    height = max(1, round((north - south) * scale))

    def ring_path(ring) -> str:
        drawn: list[tuple[int, int]] = []
        for lon, lat in ((float(p[0]), float(p[1])) for p in ring):
            point = (round((lon - west) * squeeze * scale), round((north - lat) * scale))
            if not drawn or drawn[-1] != point:
                drawn.append(point)
        if len(drawn) > 1 and drawn[0] == drawn[-1]:
            drawn.pop()
        if len(set(drawn)) < 3:  # too small to draw at this scale
            return ""
        return "M" + "L".join(f"{x} {y}" for x, y in drawn) + "Z"

    shapes = [
        Shape(key, "".join(ring_path(ring) for polygon in polygons for ring in polygon))
        for key, polygons in items
    ]
    width = max(1, round((east - west) * squeeze * scale))
    return Map(width, height, shapes)


@dataclass
class Band:
    index: int
    colour: str
    low: Value | None  # the smallest and largest value in the class (None: no area in it)
    high: Value | None


def classes(values: Iterable[Value]) -> tuple[list[Band], dict[Value, int]]:
    """Five classes of equal width between the smallest and the largest value, and each
    value's class. The legend gives each class's smallest and largest value, exactly as
    the areas hold them."""
    known = sorted(set(values))
    if not known:
        return [], {}
    low, high = known[0], known[-1]
    if low == high:
        index = {value: 0 for value in known}
    else:
        index = {
            value: min(CLASSES - 1, int((value - low) * CLASSES // (high - low))) for value in known
        }
    bands = []
    for i, colour in enumerate(PALETTE):
        members = [value for value in known if index[value] == i]
        bands.append(
            Band(i, colour, members[0] if members else None, members[-1] if members else None)
        )
    return bands, index
