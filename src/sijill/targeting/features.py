"""The household feature view: one catalogue of what is known about a household's needs.

Each feature has a name, a type, a unit, a definition and labels in Arabic, French and English
(the same catalogue pattern as the registry's fields), and its SQL, written once. The SQL runs
in DuckDB over four Arrow tables (`feature_inputs` builds them from the registry as of a date,
or from an exchange-format folder such as a survey's):

- `households`: household_id, area_code, the dwelling codes, dwelling_rooms, `assets` and
  `income_sources` (lists of codes), livestock_<kind> counts;
- `persons`: household_id, relationship, sex, birth_date, death_date, residency_status, the six
  Washington Group answers, education_level, enrolled, employment_status, employment_sector,
  orphanhood, school_grade, contributory_pension, monthly_income (minor units);
- `areas`: code, district_code, governorate_code, urban (the area tree, flattened);
- `facts`: household_id, person_id, kind, valid_from (what other agencies' lists told us).

A feature is either a per-member aggregate (stage "members": evaluated over the household's
living members, grouped by household) or a household expression (stage "household": over the
household's row, its area and the member aggregates). Every statement is plain SQL that
sqlglot transpiles to Spark (tested), so the scale-out path runs the same statements.
"""

import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Literal

import duckdb
import polars as pl

from sijill.registry.codes import HOUSEHOLD_LISTS, LIVESTOCK
from sijill.registry.fields import Labels

FeatureType = Literal["integer", "number", "boolean", "code"]
Stage = Literal["members", "household"]

SQL_TYPES = {"integer": "INTEGER", "number": "DOUBLE", "boolean": "BOOLEAN", "code": "VARCHAR"}
# Sums of money in minor units pass a 32-bit integer (21 million units of a weak currency).
WIDE_INTEGER = "BIGINT"

# Years of schooling completed at each level (a six-year primary cycle, as the global MPI's
# "six years of schooling" assumes; 3+3 secondary; two post-secondary years; a 4-year degree).
SCHOOLING_YEARS = {
    "none": 0,
    "primary": 6,
    "lower_secondary": 9,
    "upper_secondary": 12,
    "post_secondary": 14,
    "tertiary": 16,
}
# Tropical livestock units (FAO): one TLU is an animal of 250 kg.
TLU = {"cattle": 0.7, "camels": 1.0, "sheep": 0.1, "goats": 0.1, "poultry": 0.01}
WASHINGTON_GROUP = ("seeing", "hearing", "walking", "cognition", "selfcare", "communication")


@dataclass(frozen=True)
class Feature:
    name: str
    type: FeatureType
    labels: Labels
    definition: str
    sql: str
    stage: Stage = "household"
    unit: str | None = None
    wide: bool = False  # an integer stored as BIGINT (money in minor units)

    @property
    def sql_type(self) -> str:
        return WIDE_INTEGER if self.wide else SQL_TYPES[self.type]

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "type": self.type,
            "unit": self.unit,
            "definition": self.definition,
            "labels": self.labels._asdict(),
        }


def _count(name: str, condition: str, labels: Labels, definition: str) -> Feature:
    return Feature(
        name,
        "integer",
        labels,
        definition,
        f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)",
        "members",
        "persons",
    )


def _head(name: str, type_: FeatureType, value: str, labels: Labels, definition: str, unit=None):
    return Feature(
        name,
        type_,
        labels,
        definition,
        f"MAX(CASE WHEN relationship = 'head' THEN {value} END)",
        "members",
        unit,
    )


def _flag(name: str, condition: str, labels: Labels, definition: str) -> Feature:
    return Feature(name, "boolean", labels, definition, condition)


def _code(name: str, labels: Labels) -> Feature:
    return Feature(name, "code", labels, f"the registry's `{name}` code", f"h.{name}")


_WG_WORST = "GREATEST(" + ", ".join(f"COALESCE(wg_{d}, 1)" for d in WASHINGTON_GROUP) + ")"
_SCHOOLING = (
    "CASE education_level "
    + " ".join(f"WHEN '{level}' THEN {years}" for level, years in SCHOOLING_YEARS.items())
    + " END"
)
_ASSETS = HOUSEHOLD_LISTS["assets"]
_ASSET_LABELS = {
    "tv": ("تلفاز", "téléviseur", "television"),
    "fridge": ("ثلاجة", "réfrigérateur", "refrigerator"),
    "washing_machine": ("غسالة", "machine à laver", "washing machine"),
    "air_conditioner": ("مكيف هواء", "climatiseur", "air conditioner"),
    "computer": ("حاسوب", "ordinateur", "computer"),
    "mobile_phone": ("هاتف محمول", "téléphone portable", "mobile phone"),
    "car": ("سيارة", "voiture", "car"),
    "motorcycle": ("دراجة نارية", "moto", "motorcycle"),
    "satellite_dish": ("صحن لاقط", "antenne parabolique", "satellite dish"),
    "water_heater": ("سخان ماء", "chauffe-eau", "water heater"),
}
_INCOME = {
    "has_formal_wages": ("wages_formal", ("أجور رسمية", "salaires formels", "formal wages")),
    "has_pension": ("pension", ("معاش تقاعد", "pension", "pension")),
    "has_remittances": ("remittances", ("تحويلات", "transferts de fonds", "remittances")),
    "has_social_assistance": (
        "social_assistance",
        ("مساعدة اجتماعية", "aide sociale", "social assistance"),
    ),
}


# School levels by the grade attended (a 6-3-3 cycle, as `SCHOOLING_YEARS`).
_SCHOOL_LEVELS = (
    ("primary", 1, 6, ("أطفال في التعليم الابتدائي", "enfants au primaire", "children in primary")),
    (
        "lower_secondary",
        7,
        9,
        ("أطفال في الإعدادي", "enfants au collège", "children in lower secondary"),
    ),
    (
        "upper_secondary",
        10,
        12,
        ("أطفال في الثانوي", "enfants au lycée", "children in upper secondary"),
    ),
)


def _in(column: str, codes: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(code) for code in codes)})"


CATALOGUE: tuple[Feature, ...] = (
    # --- area -------------------------------------------------------------------------------
    Feature("area_code", "code", Labels("رمز المنطقة", "code de la localité", "area code"),
            "the household's locality", "h.area_code"),
    Feature("district_code", "code", Labels("رمز المعتمدية", "code du district", "district code"),
            "the district its locality lies in", "a.district_code"),
    Feature("governorate_code", "code",
            Labels("رمز المحافظة", "code du gouvernorat", "governorate code"),
            "the governorate its locality lies in", "a.governorate_code"),
    Feature("urban", "boolean", Labels("حضري", "urbain", "urban"),
            "the locality is urban (from the area list)", "a.urban"),
    # --- demography -------------------------------------------------------------------------
    _count("hh_size", "TRUE", Labels("حجم الأسرة", "taille du ménage", "household size"),
           "living members"),
    _count("n_children_0_4", "age <= 4",
           Labels("أطفال 0-4", "enfants de 0 à 4 ans", "children 0-4"), "members aged 0 to 4"),
    _count("n_children_5_17", "age BETWEEN 5 AND 17",
           Labels("أطفال 5-17", "enfants de 5 à 17 ans", "children 5-17"), "members aged 5 to 17"),
    _count("n_children_0_17", "age <= 17",
           Labels("أطفال 0-17", "enfants de 0 à 17 ans", "children 0-17"),
           "members aged 0 to 17"),
    _count("n_adults_18_64", "age BETWEEN 18 AND 64",
           Labels("بالغون 18-64", "adultes de 18 à 64 ans", "adults 18-64"),
           "members aged 18 to 64"),
    _count("n_elderly_65", "age >= 65",
           Labels("مسنون 65+", "personnes de 65 ans et plus", "elderly 65+"), "members aged 65+"),
    _count("n_female", "sex = 'F'", Labels("عدد الإناث", "nombre de femmes", "females"),
           "female members"),
    _count("n_dependents", "age <= 14 OR age >= 65",
           Labels("المعالون", "personnes à charge", "dependents"), "members aged 0-14 or 65+"),
    _count("n_working_age", "age BETWEEN 15 AND 64",
           Labels("في سن العمل", "en âge de travailler", "working age"), "members aged 15-64"),
    Feature("dependency_ratio", "number",
            Labels("نسبة الإعالة", "taux de dépendance", "dependency ratio"),
            "members 0-14 and 65+ per member 15-64; the number of dependents when no member "
            "is 15-64",
            "CAST(COALESCE(m.n_dependents, 0) AS DOUBLE)"
            " / GREATEST(COALESCE(m.n_working_age, 0), 1)",
            unit="dependents per working-age member"),
    # --- head -------------------------------------------------------------------------------
    Feature("female_head", "boolean", Labels("أسرة تعيلها امرأة", "cheffe de ménage",
            "female head"), "the head of household is a woman",
            "MAX(CASE WHEN relationship = 'head' AND sex = 'F' THEN 1 ELSE 0 END) = 1",
            "members"),
    _head("head_age", "integer", "age", Labels("عمر رب الأسرة", "âge du chef de ménage",
          "head's age"), "age of the head in completed years", "years"),
    _head("head_schooling_years", "integer", _SCHOOLING,
          Labels("سنوات تعليم رب الأسرة", "années d'études du chef", "head's years of schooling"),
          "years of schooling of the head's highest level", "years"),
    _head("head_education", "code", "education_level",
          Labels("تعليم رب الأسرة", "instruction du chef", "head's education"),
          "the head's education level code"),
    Feature("head_employed", "boolean",
            Labels("رب الأسرة يعمل", "chef de ménage en emploi", "head employed"),
            "the head's employment status is employed",
            "MAX(CASE WHEN relationship = 'head' AND employment_status = 'employed' "
            "THEN 1 ELSE 0 END) = 1", "members"),
    Feature("head_formal", "boolean",
            Labels("رب الأسرة في عمل رسمي", "chef en emploi formel", "head formally employed"),
            "the head works in the formal sector",
            "MAX(CASE WHEN relationship = 'head' AND employment_sector = 'formal' "
            "THEN 1 ELSE 0 END) = 1", "members"),
    # --- disability (Washington Group short set) --------------------------------------------
    _count("n_disability", f"{_WG_WORST} >= 3",
           Labels("أفراد ذوو إعاقة", "membres handicapés", "members with disability"),
           "members with 'a lot of difficulty' or 'cannot do at all' in any of the six "
           "Washington Group domains (the WG-SS disability cut-off)"),
    _count("n_severe_disability", f"{_WG_WORST} >= 4",
           Labels("إعاقة شديدة", "handicap sévère", "members with severe disability"),
           "members who 'cannot do at all' in any Washington Group domain"),
    _flag("has_disability", "COALESCE(m.n_disability, 0) > 0",
          Labels("في الأسرة إعاقة", "ménage avec handicap", "has a member with disability"),
          "at least one member with disability (WG-SS cut-off)"),
    _flag("has_severe_disability", "COALESCE(m.n_severe_disability, 0) > 0",
          Labels("في الأسرة إعاقة شديدة", "ménage avec handicap sévère",
                 "has a member with severe disability"),
          "at least one member who cannot do at all in a Washington Group domain"),
    # --- status -----------------------------------------------------------------------------
    _count("n_refugees", "residency_status IN ('refugee', 'asylum_seeker')",
           Labels("لاجئون", "réfugiés", "refugees"), "members who are refugees or asylum seekers"),
    _count("n_stateless", "residency_status = 'stateless'",
           Labels("عديمو الجنسية", "apatrides", "stateless"), "members who are stateless"),
    _flag("has_refugee", "COALESCE(m.n_refugees, 0) > 0",
          Labels("أسرة فيها لاجئ", "ménage avec réfugié", "has a refugee member"),
          "at least one member is a refugee or asylum seeker"),
    _flag("has_stateless", "COALESCE(m.n_stateless, 0) > 0",
          Labels("أسرة فيها عديم جنسية", "ménage avec apatride", "has a stateless member"),
          "at least one member is stateless"),
    # --- work and schooling -----------------------------------------------------------------
    _count("n_employed", "employment_status = 'employed'",
           Labels("العاملون", "membres en emploi", "employed members"), "members employed"),
    _count("n_formal_employed", "employment_status = 'employed' AND employment_sector = 'formal'",
           Labels("العاملون في القطاع الرسمي", "emplois formels", "formally employed members"),
           "members employed in the formal sector"),
    Feature("max_schooling_years_10plus", "integer",
            Labels("أعلى سنوات تعليم (10+)", "années d'études max. (10 ans et plus)",
                   "most years of schooling (10+)"),
            "the most years of schooling of any member aged 10 or older; empty when none is",
            f"MAX(CASE WHEN age >= 10 THEN {_SCHOOLING} END)", "members", "years"),
    _count("n_children_out_of_school", "age BETWEEN 6 AND 14 AND NOT COALESCE(enrolled, FALSE)",
           Labels("أطفال خارج المدرسة", "enfants non scolarisés", "children out of school"),
           "members aged 6 to 14 not enrolled in school"),
    *(
        _count(f"n_children_{level}", f"enrolled AND school_grade BETWEEN {low} AND {high}",
               Labels(*labels), f"members enrolled in grade {low} to {high} this school year")
        for level, low, high, labels in _SCHOOL_LEVELS
    ),
    # --- pensions, orphans, income ----------------------------------------------------------
    _count("n_pensioners", "COALESCE(contributory_pension, FALSE)",
           Labels("متقاعدون بمعاش", "titulaires d'une pension", "pensioners"),
           "members receiving a contributory (social insurance) pension"),
    _count("n_elderly_65_without_pension", "age >= 65 AND NOT COALESCE(contributory_pension, "
           "FALSE)", Labels("مسنون 65+ بلا معاش", "65 ans et plus sans pension",
           "elderly 65+ without a pension"), "members aged 65+ not receiving a contributory "
           "pension (one not known to receive one counts as without)"),
    _count("n_orphans", "age <= 17 AND orphanhood IN ('paternal', 'maternal', 'double')",
           Labels("أيتام", "orphelins", "orphans"),
           "members under 18 whose father, mother or both have died"),
    _flag("has_orphan", "COALESCE(m.n_orphans, 0) > 0",
          Labels("في الأسرة يتيم", "ménage avec orphelin", "has an orphan"),
          "at least one member under 18 is an orphan"),
    Feature("household_income_monthly", "integer",
            Labels("دخل الأسرة الشهري", "revenu mensuel du ménage", "household monthly income"),
            "the members' own monthly incomes added up (those not known left out); empty when "
            "no member's income is known",
            "SUM(monthly_income)", "members", "minor units of the currency a month", wide=True),
    Feature("income_per_capita_monthly", "number",
            Labels("الدخل الشهري للفرد", "revenu mensuel par personne",
                   "monthly income per person"),
            "household_income_monthly per living member; empty when it is",
            "CAST(m.household_income_monthly AS DOUBLE) / GREATEST(COALESCE(m.hh_size, 0), 1)",
            unit="minor units of the currency a month per person"),
    # --- dwelling ---------------------------------------------------------------------------
    _code("dwelling_tenure", Labels("حيازة المسكن", "statut d'occupation", "dwelling tenure")),
    _code("dwelling_walls", Labels("مادة الجدران", "matériau des murs", "wall material")),
    _code("dwelling_roof", Labels("مادة السقف", "matériau du toit", "roof material")),
    _code("dwelling_floor", Labels("مادة الأرضية", "matériau du sol", "floor material")),
    _code("water_source", Labels("مصدر مياه الشرب", "source d'eau", "drinking water")),
    _code("sanitation", Labels("الصرف الصحي", "assainissement", "sanitation")),
    _code("cooking_fuel", Labels("وقود الطهي", "combustible de cuisson", "cooking fuel")),
    _code("electricity", Labels("مصدر الكهرباء", "source d'électricité", "electricity")),
    Feature("dwelling_rooms", "integer", Labels("عدد غرف النوم", "chambres", "sleeping rooms"),
            "sleeping rooms", "h.dwelling_rooms", unit="rooms"),
    Feature("persons_per_room", "number",
            Labels("أفراد لكل غرفة", "personnes par chambre", "persons per room"),
            "living members per sleeping room (a dwelling without one counts one)",
            "CAST(COALESCE(m.hh_size, 0) AS DOUBLE) / GREATEST(COALESCE(h.dwelling_rooms, 1), 1)",
            unit="persons per room"),
    _flag("improved_water",
          _in("h.water_source", ("piped_dwelling", "piped_yard", "public_tap", "well")),
          Labels("مياه محسنة", "eau améliorée", "improved water"),
          "piped (dwelling or yard), a public tap or a well (not a tanker or surface water)"),
    _flag("improved_sanitation", _in("h.sanitation", ("flush_sewer", "flush_septic",
          "pit_latrine")), Labels("صرف صحي محسن", "assainissement amélioré",
          "improved sanitation"), "a flush toilet or a pit latrine, not shared"),
    _flag("clean_cooking_fuel", _in("h.cooking_fuel", ("gas", "electricity")),
          Labels("وقود طهي نظيف", "combustible propre", "clean cooking fuel"),
          "cooks with gas or electricity"),
    _flag("has_electricity", "h.electricity <> 'none'",
          Labels("كهرباء", "électricité", "has electricity"), "grid, generator or solar"),
    _flag("adequate_floor", "h.dwelling_floor <> 'earth'",
          Labels("أرضية ملائمة", "sol adéquat", "adequate floor"), "the floor is not earth"),
    _flag("adequate_roof", "h.dwelling_roof NOT IN ('thatch', 'tent')",
          Labels("سقف ملائم", "toit adéquat", "adequate roof"), "the roof is not thatch or tent"),
    _flag("adequate_walls", "h.dwelling_walls NOT IN ('mud', 'tin', 'tent')",
          Labels("جدران ملائمة", "murs adéquats", "adequate walls"),
          "the walls are not mud, tin or tent"),
    # --- assets, livestock, income sources --------------------------------------------------
    *(
        _flag(f"has_{asset}", f"LIST_CONTAINS(h.assets, '{asset}')",
              Labels(*_ASSET_LABELS[asset]), f"the household owns a {asset.replace('_', ' ')}")
        for asset in _ASSETS
    ),
    Feature("n_assets", "integer", Labels("عدد الممتلكات", "nombre de biens", "assets owned"),
            f"how many of the {len(_ASSETS)} listed assets the household owns",
            " + ".join(f"CASE WHEN LIST_CONTAINS(h.assets, '{a}') THEN 1 ELSE 0 END"
                       for a in _ASSETS), unit="assets"),
    Feature("livestock_tlu", "number",
            Labels("الثروة الحيوانية (وحدات)", "cheptel (UBT)", "livestock (TLU)"),
            "tropical livestock units: " + ", ".join(f"{k} {v}" for k, v in TLU.items()),
            " + ".join(f"{TLU[kind]} * COALESCE(h.livestock_{kind}, 0)" for kind in LIVESTOCK),
            unit="TLU"),
    *(
        _flag(name, f"LIST_CONTAINS(h.income_sources, '{code}')", Labels(*labels),
              f"`{code}` is among the household's income sources")
        for name, (code, labels) in _INCOME.items()
    ),
    # --- linkage facts ----------------------------------------------------------------------
    Feature("n_formal_employment_facts", "integer",
            Labels("أفراد في كشوف الرواتب", "membres sur une liste de paie",
                   "members on a payroll"),
            "members matched to a payroll list (a formal_employment fact valid on the date)",
            "COALESCE(f.n_formal_employment_facts, 0)", unit="persons"),
)  # fmt: skip

BY_NAME = {feature.name: feature for feature in CATALOGUE}
# Helpers for other features: in the statement, left out of the view.
_INTERNAL = frozenset({"n_dependents", "n_working_age"})
FEATURES = tuple(f for f in CATALOGUE if f.name not in _INTERNAL)
# Counts of members are 0 for a household without living members; a sum of incomes is not:
# none known stays unknown.
COUNTS_DEFAULT_ZERO = frozenset(
    f.name
    for f in CATALOGUE
    if f.stage == "members" and f.sql.startswith("SUM(") and f.unit == "persons"
)


def _age(as_of: date) -> str:
    """Age in completed years on `as_of`, in SQL every engine reads the same way."""
    month_day = as_of.month * 100 + as_of.day
    return (
        f"{as_of.year} - YEAR(birth_date) - CASE WHEN MONTH(birth_date) * 100 + DAY(birth_date)"
        f" > {month_day} THEN 1 ELSE 0 END"
    )


def statement(as_of: date) -> str:
    """The one statement that computes the feature view as of a date (DuckDB SQL)."""
    if not isinstance(as_of, date):
        raise TypeError("as_of must be a date")
    day = f"DATE '{as_of.isoformat()}'"
    wg = ", ".join(f"wg_{d}" for d in WASHINGTON_GROUP)
    aggregates = ",\n    ".join(f"{f.sql} AS {f.name}" for f in CATALOGUE if f.stage == "members")
    selected = []
    for feature in FEATURES:
        if feature.stage == "members":
            value = f"m.{feature.name}"
            if feature.name in COUNTS_DEFAULT_ZERO:
                value = f"COALESCE({value}, 0)"
        else:
            value = feature.sql
        selected.append(f"CAST({value} AS {feature.sql_type}) AS {feature.name}")
    columns = ",\n  ".join(selected)
    return f"""WITH members AS (
  SELECT household_id, relationship, sex, residency_status, {wg}, education_level, enrolled,
    employment_status, employment_sector, orphanhood, school_grade, contributory_pension,
    monthly_income, {_age(as_of)} AS age
  FROM persons
  WHERE death_date IS NULL OR death_date > {day}
),
m AS (
  SELECT household_id,
    {aggregates}
  FROM members
  GROUP BY household_id
),
f AS (
  SELECT household_id, COUNT(DISTINCT person_id) AS n_formal_employment_facts
  FROM facts
  WHERE kind = 'formal_employment' AND valid_from <= {day}
  GROUP BY household_id
)
SELECT h.household_id,
  {columns}
FROM households h
LEFT JOIN m ON m.household_id = h.household_id
LEFT JOIN areas a ON a.code = h.area_code
LEFT JOIN f ON f.household_id = h.household_id
ORDER BY h.household_id"""


def catalogue_version() -> str:
    """A digest of what the features are: their names, types and SQL."""
    text = "\n".join(f"{f.name}|{f.type}|{f.stage}|{f.sql}" for f in CATALOGUE)
    return "f-" + hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Inputs:
    """The four tables the statement reads (see the module's docstring for their columns)."""

    households: pl.DataFrame
    persons: pl.DataFrame
    areas: pl.DataFrame
    facts: pl.DataFrame


def compute(inputs: Inputs, as_of: date, threads: int | None = None) -> pl.DataFrame:
    """The feature view of these households as of `as_of`: one row per household."""
    connection = duckdb.connect()
    try:
        if threads:
            connection.execute(f"SET threads = {int(threads)}")
        for name in ("households", "persons", "areas", "facts"):
            connection.register(name, getattr(inputs, name).to_arrow())
        return pl.from_arrow(connection.sql(statement(as_of)).to_arrow_table())
    finally:
        connection.close()
