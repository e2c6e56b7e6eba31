"""The registry's code lists: the values each coded field may take (docs/data-format.md).

One definition serves the API's schemas, the bulk importer's checks and the synthetic country.
Thresholds that policy sets (and may change) are dated parameters in `parameters/`.
"""

from pathlib import Path

from sijill.core.parameters import Parameter, parameters_in

PARAMETERS = Path(__file__).with_name("parameters")

HOUSEHOLD_CODES: dict[str, tuple[str, ...]] = {
    "dwelling_tenure": ("owned", "rented", "free_use", "informal_settlement", "camp"),
    "dwelling_walls": ("concrete", "brick", "stone", "mud", "wood", "tin", "tent"),
    "dwelling_roof": ("concrete", "tin", "wood", "thatch", "tent"),
    "dwelling_floor": ("tiles", "cement", "earth", "other"),
    "water_source": ("piped_dwelling", "piped_yard", "public_tap", "well", "tanker", "surface"),
    "sanitation": ("flush_sewer", "flush_septic", "pit_latrine", "shared", "none"),
    "cooking_fuel": ("gas", "electricity", "kerosene", "wood", "charcoal", "dung"),
    "electricity": ("grid", "generator", "solar", "none"),
    "registration_source": ("survey", "on_demand", "agency_import", "synthetic"),
}
HOUSEHOLD_LISTS: dict[str, tuple[str, ...]] = {
    "assets": (
        "tv",
        "fridge",
        "washing_machine",
        "air_conditioner",
        "computer",
        "mobile_phone",
        "car",
        "motorcycle",
        "satellite_dish",
        "water_heater",
    ),
    "income_sources": (
        "wages_formal",
        "wages_informal",
        "agriculture",
        "own_business",
        "pension",
        "remittances",
        "social_assistance",
        "rent",
        "none",
    ),
}
LIVESTOCK = ("cattle", "sheep", "goats", "camels", "poultry")

PERSON_CODES: dict[str, tuple[str, ...]] = {
    "relationship": (
        "head",
        "spouse",
        "child",
        "grandchild",
        "parent",
        "sibling",
        "other_relative",
        "non_relative",
    ),
    "sex": ("F", "M"),
    "marital_status": ("never_married", "married", "divorced", "widowed", "separated"),
    "residency_status": ("citizen", "refugee", "asylum_seeker", "migrant", "stateless"),
    "national_id_type": ("national_id", "unhcr", "passport", "residence_permit"),
    "education_level": (
        "none",
        "primary",
        "lower_secondary",
        "upper_secondary",
        "post_secondary",
        "tertiary",
    ),
    "employment_status": (
        "employed",
        "unemployed",
        "inactive",
        "student",
        "retired",
        "unable_to_work",
        "not_applicable",
    ),
    "employment_sector": ("formal", "informal"),
    # Father, mother or both deceased (UNICEF's definitions of paternal, maternal, double).
    "orphanhood": ("none", "paternal", "maternal", "double"),
}
# Washington Group short set: six domains, answered 1 (no difficulty) .. 4 (cannot do at all).
WG_DOMAINS = (
    "wg_seeing",
    "wg_hearing",
    "wg_walking",
    "wg_cognition",
    "wg_selfcare",
    "wg_communication",
)
WG_LEVELS = (1, 2, 3, 4)


def wg_disability_threshold() -> Parameter:
    """The WG disability identifier's cut-off, dated and referenced
    (parameters/wg_disability_threshold.yaml): a person answering at least this level in any
    domain counts as having a disability."""
    return parameters_in(PARAMETERS)["wg_disability_threshold"]


BIRTH_DATE_PRECISIONS = ("day", "month", "year")
MEMBERSHIP_END_REASONS = (
    "death",
    "moved",
    "marriage",
    "split",
    "registration_error",
    "relationship_changed",
)
