"""Turn a chunk's integer codes into the exchange format's Arrow tables (docs/data-format.md).

Column names and code values here are the format's; `SCHEMAS` is the single place they are
listed, and the tests read the format document to check them.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sijill.registry.codes import LIVESTOCK
from sijill.synth import dwelling as dw
from sijill.synth import names, national_ids, typos
from sijill.synth.codes import fixed_strings, permute, template_strings
from sijill.synth.duplicates import ARABIC_ONLY, KINDS, LATIN_ONLY, NAME_PARTS
from sijill.synth.facts import ORPHANHOOD
from sijill.synth.geography import Geography
from sijill.synth.population import MARITAL, NATIONALITIES, RELATIONSHIPS, RESIDENCY
from sijill.synth.registration import (
    ID_TYPES,
    NATIONAL_ID,
    PASSPORT,
    PHONE_COUNTRY,
    UNHCR,
    YEAR,
    YEAR_MONTH,
)
from sijill.synth.welfare import EDUCATION, EMPLOYMENT, SECTORS, WG_DOMAINS

_s, _b, _d = pa.string(), pa.bool_(), pa.date32()
SCHEMAS = {
    "households": pa.schema(
        [
            ("household_key", _s),
            ("area_code", _s),
            ("address", _s),
            ("latitude", pa.float64()),
            ("longitude", pa.float64()),
            ("dwelling_tenure", _s),
            ("dwelling_walls", _s),
            ("dwelling_roof", _s),
            ("dwelling_floor", _s),
            ("dwelling_rooms", pa.int16()),
            ("water_source", _s),
            ("sanitation", _s),
            ("cooking_fuel", _s),
            ("electricity", _s),
            ("assets", _s),
            ("livestock", _s),
            ("income_sources", _s),
            ("registration_source", _s),
            ("registration_date", _d),
            ("enumerator", _s),
            ("consent_given", _b),
            ("consent_date", _d),
            ("consent_purposes", _s),
        ]
    ),
    "persons": pa.schema(
        [("person_key", _s), ("household_key", _s), ("relationship", _s)]
        + [(f"{part}_name_{script}", _s) for script in ("ar", "lat") for part in NAME_PARTS]
        + [
            ("sex", _s),
            ("birth_date", _s),
            ("marital_status", _s),
            ("nationality", _s),
            ("residency_status", _s),
            ("national_id_type", _s),
            ("national_id", _s),
            ("phone", _s),
        ]
        + [(f"wg_{d}", pa.int8()) for d in WG_DOMAINS]
        + [
            ("education_level", _s),
            ("enrolled", _b),
            ("employment_status", _s),
            ("employment_sector", _s),
            ("school_grade", pa.int8()),
            ("contributory_pension", _b),
            ("orphanhood", _s),
            ("monthly_income", pa.int64()),
        ]
    ),
    "truth_households": pa.schema(
        [
            ("household_key", _s),
            ("log_consumption_pc", pa.float64()),
            ("consumption_pc", pa.float64()),
            ("poor", _b),
            ("extreme_poor", _b),
            ("region_code", _s),
            ("urban", _b),
        ]
    ),
    "truth_persons": pa.schema(
        [
            ("person_key", _s),
            ("entity_id", pa.int64()),
            ("duplicate_of", _s),
            ("duplicate_kind", _s),
            ("true_monthly_income", pa.int64()),
        ]
    ),
}
PURPOSES = ("eligibility_assessment;payment", "research", "data_sharing:MOH")
HOUSEHOLD_KEY_SPAN = 10**9  # H and nine digits


def _coded(values, codes: np.ndarray) -> pa.Array:
    """Code values looked up by index; a negative code is an empty cell."""
    indices = pa.array(np.maximum(codes, 0).astype(np.int32), mask=np.asarray(codes) < 0)
    return pa.array(values, _s).take(indices)


def _constant(value: str, n: int) -> pa.Array:
    return pa.array([value], _s).take(pa.array(np.zeros(n, dtype=np.int32)))


def _lists(items, masks: np.ndarray) -> pa.Array:
    """`;`-joined items of each bit mask (bit i = items[i]); an empty list is an empty cell."""
    table = [
        ";".join(item for i, item in enumerate(items) if m >> i & 1) or None
        for m in range(1 << len(items))
    ]
    return pa.array(table, _s).take(pa.array(masks.astype(np.int32)))


def household_keys(counter: np.ndarray, key: int) -> pa.Array:
    return fixed_strings(permute(counter, HOUSEHOLD_KEY_SPAN, key), 9, prefix="H")


def written_phones(numbers: np.ndarray) -> pa.Array:
    """Each phone as written (`registration.phone_numbers`'s nine digits); -1 is no phone."""
    return fixed_strings(np.maximum(numbers, 0), 9, PHONE_COUNTRY, valid=numbers >= 0)


def _dates(days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    return pa.array(days.astype("datetime64[D]"), _d, mask=None if valid is None else ~valid)


def households(hh: dict, geo: Geography, keys: pa.Array) -> pa.Table:
    n = len(keys)
    herd = _herds(hh["livestock"])
    consent = hh["consent"]
    district = geo.district[hh["locality"]]
    enumerator_prefix = pa.array([f"E{code[2:]}" for code in geo.district_code], _s)
    columns = {
        "household_key": keys,
        "area_code": geo.locality_code.take(pa.array(hh["locality"])),
        "address": _addresses(hh, geo),
        "latitude": pa.array(hh["latitude"]),
        "longitude": pa.array(hh["longitude"]),
        "dwelling_tenure": _coded(dw.TENURE, hh["tenure"]),
        "dwelling_walls": _coded(dw.WALLS, hh["walls"]),
        "dwelling_roof": _coded(dw.ROOF, hh["roof"]),
        "dwelling_floor": _coded(dw.FLOOR, hh["floor"]),
        "dwelling_rooms": pa.array(hh["rooms"].astype(np.int16)),
        "water_source": _coded(dw.WATER, hh["water"]),
        "sanitation": _coded(dw.SANITATION, hh["sanitation"]),
        "cooking_fuel": _coded(dw.FUEL, hh["fuel"]),
        "electricity": _coded(dw.ELECTRICITY, hh["power"]),
        "assets": _lists(dw.ASSETS, hh["assets"]),
        "livestock": herd,
        "income_sources": _lists(dw.INCOME, hh["income"]),
        "registration_source": _constant("synthetic", n),
        "registration_date": _dates(hh["registration_days"]),
        "enumerator": pc.binary_join_element_wise(
            enumerator_prefix.take(pa.array(district)), fixed_strings(hh["enumerator"], 2), "-"
        ),
        "consent_given": pa.array(consent),
        "consent_date": _dates(hh["registration_days"], consent),
        "consent_purposes": pc.if_else(
            pa.array(consent), _lists(PURPOSES, 1 + 2 * hh["purposes"]), None
        ),
    }
    return pa.table(columns, schema=SCHEMAS["households"])


def _herds(counts: np.ndarray) -> pa.Array:
    """`kind:count` items joined with `;`, from a (households x kinds) matrix of counts."""
    items = [
        pc.if_else(
            pa.array(counts[:, k] > 0),
            pc.binary_join_element_wise(kind + ":", pc.cast(pa.array(counts[:, k]), _s), ""),
            "",
        )
        for k, kind in enumerate(LIVESTOCK)
    ]
    # (null_handling="skip" would be the natural way, but pyarrow drops all-null rows with it.)
    joined = pc.utf8_trim(
        pc.replace_substring_regex(pc.binary_join_element_wise(*items, ";"), ";+", ";"), ";"
    )
    return pc.if_else(pc.equal(joined, ""), pa.scalar(None, _s), joined)


def _addresses(hh: dict, geo: Geography) -> pa.Array:
    house = pc.cast(pa.array(hh["house_no"]), _s)
    street = pc.cast(pa.array(hh["street"]), _s)
    locality = pa.array(hh["locality"])
    en, ar = geo.locality_name_en.take(locality), geo.locality_name_ar.take(locality)
    j = pc.binary_join_element_wise
    forms = {  # (urban, camp) -> (English, Arabic)
        "town": (
            j("Bldg ", house, ", Street ", street, ", ", en, ""),
            j("مبنى ", house, "، شارع ", street, "، ", ar, ""),
        ),
        "village": (j("House ", house, ", ", en, ""), j("منزل ", house, "، ", ar, "")),
        "camp": (
            j("Block ", street, ", Shelter ", house, ", ", en, ""),
            j("قطاع ", street, "، مأوى ", house, "، ", ar, ""),
        ),
    }
    arabic = pa.array(hh["address_arabic"])
    pick = {k: pc.if_else(arabic, ar_form, en_form) for k, (en_form, ar_form) in forms.items()}
    return pc.if_else(
        pa.array(hh["camp"]),
        pick["camp"],
        pc.if_else(pa.array(hh["urban"]), pick["town"], pick["village"]),
    )


def persons(p: dict, hh_keys: pa.Array, rng: np.random.Generator) -> tuple[pa.Table, pa.Array]:
    """The persons table and, separately, each record's person key (also used for truth)."""
    person_keys = pc.binary_join_element_wise(
        hh_keys.take(pa.array(p["hh"])), fixed_strings(p["line"], 2), "-"
    )
    columns = {
        "person_key": person_keys,
        "household_key": hh_keys.take(pa.array(p["hh"])),
        "relationship": _coded(RELATIONSHIPS, p["rel"]),
    }
    columns.update(_names(p, rng))
    wg = {
        f"wg_{d}": pa.array(p["wg"][:, k], mask=p["wg"][:, k] == 0)
        for k, d in enumerate(WG_DOMAINS)
    }
    columns.update(
        sex=_coded(("F", "M"), p["sex_male"].astype(np.int8)),
        birth_date=_birth_dates(p["birth_days"], p["birth_precision"]),
        marital_status=_coded(MARITAL, p["marital"]),
        nationality=_coded(NATIONALITIES, p["nationality"]),
        residency_status=_coded(RESIDENCY, p["residency"]),
        national_id_type=_coded(ID_TYPES, p["id_type"]),
        national_id=_document_numbers(p["id_type"], p["id_number"]),
        phone=written_phones(p["phone"]),
        **wg,
        education_level=_coded(EDUCATION, p["education"]),
        enrolled=pa.array(p["enrolled"]),
        employment_status=_coded(EMPLOYMENT, p["employment"]),
        employment_sector=_coded(SECTORS, p["sector"]),
        school_grade=pa.array(p["grade"], mask=p["grade"] == 0),
        contributory_pension=pa.array(p["pension"]),
        orphanhood=_coded(ORPHANHOOD, p["orphan"]),
        monthly_income=pa.array(p["income"], mask=p["income"] < 0),
    )
    return pa.table(columns, schema=SCHEMAS["persons"]), person_keys


def _names(p: dict, rng: np.random.Generator) -> dict[str, pa.Array]:
    """Each name part in both scripts, except where a record is written in one only."""
    out = {}
    for k, part in enumerate(NAME_PARTS):
        table = names.SURNAMES if part == "family" else names.GIVEN
        ids = p[part]
        missing = ids < 0
        no_arabic = missing | (p["script"] == LATIN_ONLY)
        arabic = table.arabic.take(pa.array(np.maximum(ids, 0), mask=no_arabic))
        latin_at = table.latin_index(ids, p[f"spell_{part}"])
        latin = table.latin.take(pa.array(latin_at, mask=missing | (p["script"] == ARABIC_ONLY)))
        out[f"{part}_name_ar"] = _with_typos(arabic, p["typo_field"] == 2 * k, rng)
        out[f"{part}_name_lat"] = _with_typos(latin, p["typo_field"] == 2 * k + 1, rng)
    return out


def _with_typos(column: pa.Array, rows: np.ndarray, rng: np.random.Generator) -> pa.Array:
    chosen = np.flatnonzero(rows)
    if not len(chosen):
        return column
    edited = typos.apply(column.take(pa.array(chosen)), rng)
    index = np.arange(len(column))
    index[chosen] = len(column) + np.arange(len(chosen))
    return pa.concat_arrays([column, edited]).take(pa.array(index))


def _birth_dates(days: np.ndarray, precision: np.ndarray) -> pa.Array:
    full = pc.cast(_dates(days), _s)
    return pc.if_else(
        pa.array(precision == YEAR),
        pc.utf8_slice_codeunits(full, 0, 4),
        pc.if_else(pa.array(precision == YEAR_MONTH), pc.utf8_slice_codeunits(full, 0, 7), full),
    )


def _document_numbers(kind: np.ndarray, number: np.ndarray) -> pa.Array:
    """Each document number written the way its document prints it."""
    parts, rows = [], []
    for code in range(len(ID_TYPES)):
        chosen = np.flatnonzero(kind == code)
        rows.append(chosen)
        parts.append(_document_format(code, number[chosen]))
    none = np.flatnonzero(kind < 0)
    rows.append(none)
    parts.append(pa.nulls(len(none), _s))
    order = np.concatenate(rows)
    position = np.empty(len(kind), dtype=np.int64)
    position[order] = np.arange(len(kind))
    return pa.concat_arrays(parts).take(pa.array(position))


def _document_format(code: int, number: np.ndarray) -> pa.Array:
    if code == NATIONAL_ID:
        return fixed_strings(national_ids.full_numbers(number), 11)
    if code == UNHCR:  # case-number style: office, year, case
        return template_strings("1##-##C#####", number)
    if code == PASSPORT:  # a letter then eight digits
        letters = np.frombuffer(b"ABCDEFGHJK", dtype=np.uint8)[number // 10**8 % 10]
        digits = fixed_strings(number % 10**8, 8)
        return pc.binary_join_element_wise(pa.array(letters.view("S1").astype(str), _s), digits, "")
    return fixed_strings(number, 10, prefix="RP")


def truth_persons(p: dict, person_keys: pa.Array) -> pa.Table:
    source = np.where(p["dup_of_row"] >= 0, p["dup_of_row"], 0)
    duplicate_of = person_keys.take(pa.array(source, mask=p["dup_of_row"] < 0))
    return pa.table(
        {
            "person_key": person_keys,
            "entity_id": pa.array(p["counter"]),
            "duplicate_of": duplicate_of,
            "duplicate_kind": _coded(KINDS, p["dup_kind"]),
            "true_monthly_income": pa.array(p["true_income"], mask=p["true_income"] < 0),
        },
        schema=SCHEMAS["truth_persons"],
    )


def truth_households(hh: dict, keys: pa.Array, geo: Geography, poverty: tuple) -> pa.Table:
    line, extreme = poverty
    consumption = np.exp(hh["log_consumption"])
    return pa.table(
        {
            "household_key": keys,
            "log_consumption_pc": pa.array(hh["log_consumption"]),
            "consumption_pc": pa.array(consumption),
            "poor": pa.array(consumption < line),
            "extreme_poor": pa.array(consumption < extreme),
            "region_code": pa.array(geo.governorate_code, _s).take(
                pa.array(geo.governorate[hh["locality"]])
            ),
            "urban": pa.array(hh["urban"]),
        },
        schema=SCHEMAS["truth_households"],
    )
