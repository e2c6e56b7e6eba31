"""The synthetic country's areas: governorates, districts, localities and their rectangles.

Each area is a rectangle cut from its parent, so polygons nest and never overlap. Poverty has a
geography: the governorates' effects on consumption are fixed (the capital richest, the steppe
poorest) so that governorate poverty rates span roughly 8% to 45%, as in most MENA countries.
Two districts host a refugee camp, a locality of its own.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

COUNTRY = ("SJ", "سجل", "Sijill")
BOUNDS = (35.5, 29.5, 39.5, 33.5)  # west, south, east, north (decimal degrees)

# code suffix, Arabic, English, effect on log consumption, share of localities that are urban
GOVERNORATES = [
    ("01", "العاصمة", "Al-Asima", 0.30, 0.70),
    ("02", "الساحل", "Al-Sahil", 0.17, 0.40),
    ("03", "الشمال", "Al-Shamal", -0.02, 0.25),
    ("04", "الوادي", "Al-Wadi", 0.06, 0.25),
    ("05", "الجبل", "Al-Jabal", -0.15, 0.20),
    ("06", "البادية", "Al-Badiya", -0.36, 0.15),
]
CAMP_GOVERNORATES = ("03", "05")  # the northern and mountain governorates host the camps
CAMP_NAMES = [("مخيم الأمل", "Al-Amal Camp"), ("مخيم النور", "Al-Nour Camp")]

PLACE_PREFIXES = [
    ("تل", "Tal"),
    ("عين", "Ain"),
    ("بئر", "Bir"),
    ("دير", "Deir"),
    ("كفر", "Kafr"),
    ("رأس", "Ras"),
    ("وادي", "Wadi"),
    ("جبل", "Jabal"),
    ("أم", "Umm"),
    ("خربة", "Khirbet"),
    ("بيت", "Beit"),
    ("قصر", "Qasr"),
    ("مرج", "Marj"),
    ("سوق", "Souq"),
    ("حي", "Hay"),
    ("قرية", "Qaryat"),
    ("نبع", "Nabaa"),
    ("سهل", "Sahl"),
]
PLACE_SUFFIXES = [
    ("الزيتون", "al-Zaytoun"),
    ("النخيل", "al-Nakhil"),
    ("الرمان", "al-Rumman"),
    ("الحمراء", "al-Hamra"),
    ("البيضاء", "al-Bayda"),
    ("الجديدة", "al-Jadida"),
    ("الشرقية", "al-Sharqiya"),
    ("الغربية", "al-Gharbiya"),
    ("الكبير", "al-Kabir"),
    ("الصغير", "al-Saghir"),
    ("السلام", "al-Salam"),
    ("الورد", "al-Ward"),
    ("التين", "al-Tin"),
    ("العنب", "al-Inab"),
    ("الذهب", "al-Dhahab"),
    ("القمر", "al-Qamar"),
    ("الشمس", "al-Shams"),
    ("النور", "al-Nour"),
    ("الأمير", "al-Amir"),
    ("الشيخ", "al-Sheikh"),
    ("الحجر", "al-Hajar"),
    ("الريح", "al-Rih"),
    ("الماء", "al-Maa"),
    ("الغزال", "al-Ghazal"),
    ("النسر", "al-Nisr"),
    ("الصخرة", "al-Sakhra"),
    ("البلد", "al-Balad"),
    ("الوسطى", "al-Wusta"),
    ("العالي", "al-Aali"),
    ("الخضراء", "al-Khadra"),
    ("السوداء", "al-Sawda"),
    ("الفوقا", "al-Fauqa"),
    ("التحتا", "al-Tahta"),
    ("العرب", "al-Arab"),
]


@dataclass
class Area:
    code: str
    parent: str | None
    level: str
    name_ar: str
    name_en: str
    box: tuple[float, float, float, float]
    urban: bool | None = None
    # Localities only: where they sit, and what the household generator needs to know.
    governorate: int = -1
    district: int = -1
    camp: bool = False
    weight: float = 0.0  # relative number of households
    effect: float = 0.0  # on log consumption (governorate + district)


@dataclass
class Geography:
    """The areas, plus per-locality arrays the household generator samples from."""

    areas: list[Area]
    locality_code: pa.Array  # one per locality, in `areas` order
    locality_name_ar: pa.Array
    locality_name_en: pa.Array
    governorate: np.ndarray  # governorate index (0..5) of each locality
    district: np.ndarray  # district index of each locality
    district_code: list[str]
    urban: np.ndarray  # bool per locality
    camp: np.ndarray  # bool per locality
    weight: np.ndarray  # share of the country's (non-camp) households living there
    box: np.ndarray  # (n_localities, 4): west, south, east, north
    effect: np.ndarray  # effect on log consumption, per locality (governorate + district)
    governorate_code: list[str]
    enumerators: np.ndarray  # how many enumerators work in each district


def _split(rng: np.random.Generator, lo: float, hi: float, parts: int) -> np.ndarray:
    shares = rng.dirichlet(np.full(parts, 4.0))
    return lo + (hi - lo) * np.concatenate([[0.0], np.cumsum(shares)])


def _place_names(rng: np.random.Generator) -> Iterator[tuple[str, str]]:
    pairs = [
        (f"{pa_} {sa}", f"{pe} {se}") for pa_, pe in PLACE_PREFIXES for sa, se in PLACE_SUFFIXES
    ]
    return (pairs[i] for i in rng.permutation(len(pairs)))


def _governorate_boxes(rng: np.random.Generator) -> list[tuple[float, float, float, float]]:
    """A 3 x 2 grid with uneven cuts."""
    west, south, east, north = BOUNDS
    columns = _split(rng, west, east, 3)
    boxes = []
    for c in range(3):
        rows = _split(rng, south, north, 2)
        boxes += [(columns[c], rows[r], columns[c + 1], rows[r + 1]) for r in (1, 0)]
    return boxes


def build(rng: np.random.Generator) -> Geography:
    names = _place_names(rng)
    camps = iter(CAMP_NAMES)
    camp_district = {gov: int(rng.integers(0, 4)) for gov in CAMP_GOVERNORATES}
    areas = [Area(COUNTRY[0], None, "country", COUNTRY[1], COUNTRY[2], BOUNDS)]
    for g, (row, box) in enumerate(zip(GOVERNORATES, _governorate_boxes(rng), strict=True)):
        suffix, name_ar, name_en, effect, urban_share = row
        governorate = Area(COUNTRY[0] + suffix, COUNTRY[0], "governorate", name_ar, name_en, box)
        areas.append(governorate)
        west, south, east, north = box
        n_districts = int(rng.integers(4, 7))
        columns = _split(rng, west, east, n_districts)
        for d in range(n_districts):
            capital = next(names)
            district = Area(
                f"{governorate.code}{d + 1:02d}",
                governorate.code,
                "district",
                *capital,
                (columns[d], south, columns[d + 1], north),
            )
            areas.append(district)
            district_index = sum(a.level == "district" for a in areas) - 1
            local = _Locality(g, district_index, effect + rng.normal(0.0, 0.08), urban_share)
            camp = next(camps) if camp_district.get(suffix) == d else None
            areas += _localities(rng, district, local, capital, names, camp)
    return _geography(areas, rng)


@dataclass
class _Locality:
    """What a district passes down to its localities."""

    governorate: int
    district: int
    effect: float
    urban_share: float


def _localities(rng, district: Area, local: _Locality, capital, names, camp) -> list[Area]:
    """A district's localities: the district capital (a town) first, then villages and towns,
    then the district's refugee camp if it has one."""
    n = int(rng.integers(5, 11))
    named = [capital] + [next(names) for _ in range(n - 1)] + ([camp] if camp else [])
    west, south, east, north = district.box
    rows = _split(rng, south, north, len(named))
    out = []
    for k, (name_ar, name_en) in enumerate(named):
        is_camp = camp is not None and k == n
        urban = k == 0 or (not is_camp and rng.random() < local.urban_share)
        # Towns are bigger than villages; the capital governorate's towns biggest of all.
        size = (
            rng.lognormal(0.0, 0.5)
            * (4.0 if urban else 1.0)
            * (1.6 if local.governorate == 0 else 1.0)
        )
        code = f"{district.code}{k + 1:02d}"
        box = (west, rows[k], east, rows[k + 1])
        out.append(
            Area(
                code,
                district.code,
                "locality",
                name_ar,
                name_en,
                box,
                bool(urban),
                governorate=local.governorate,
                district=local.district,
                camp=is_camp,
                weight=0.0 if is_camp else size,
                effect=local.effect,
            )
        )
    return out


def _geography(areas: list[Area], rng: np.random.Generator) -> Geography:
    localities = [a for a in areas if a.level == "locality"]
    weight = np.array([a.weight for a in localities])
    districts = [a.code for a in areas if a.level == "district"]
    return Geography(
        areas=areas,
        locality_code=pa.array([a.code for a in localities]),
        locality_name_ar=pa.array([a.name_ar for a in localities]),
        locality_name_en=pa.array([a.name_en for a in localities]),
        governorate=np.array([a.governorate for a in localities], dtype=np.int8),
        district=np.array([a.district for a in localities], dtype=np.int16),
        district_code=districts,
        urban=np.array([a.urban for a in localities]),
        camp=np.array([a.camp for a in localities]),
        weight=weight / weight.sum(),
        box=np.array([a.box for a in localities]),
        effect=np.array([a.effect for a in localities]),
        governorate_code=[COUNTRY[0] + g[0] for g in GOVERNORATES],
        enumerators=rng.integers(4, 13, len(districts)),
    )


def areas_table(geo: Geography) -> pa.Table:
    return pa.table(
        {
            "code": [a.code for a in geo.areas],
            "parent_code": pa.array([a.parent for a in geo.areas], pa.string()),
            "level": [a.level for a in geo.areas],
            "name_ar": [a.name_ar for a in geo.areas],
            "name_en": [a.name_en for a in geo.areas],
            "urban": pa.array([a.urban for a in geo.areas], pa.bool_()),
        }
    )


def write_geojson(geo: Geography, path: Path) -> None:
    features = []
    for a in geo.areas:
        w, s, e, n = (round(v, 5) for v in a.box)
        ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "code": a.code,
                    "level": a.level,
                    "name_ar": a.name_ar,
                    "name_en": a.name_en,
                },
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    collection = {"type": "FeatureCollection", "features": features}
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
