"""The registry's import fields (docs/data-format.md), grouped by how they are checked."""

from sijill.identity.names import NAME_PARTS
from sijill.registry.codes import HOUSEHOLD_CODES, PERSON_CODES, WG_DOMAINS

HOUSEHOLD_KEY = "household_key"
PERSON_KEY = "person_key"

HOUSEHOLD_FIELDS = (
    HOUSEHOLD_KEY,
    "area_code",
    "address",
    "latitude",
    "longitude",
    *HOUSEHOLD_CODES,
    "dwelling_rooms",
    "assets",
    "livestock",
    "income_sources",
    "registration_date",
    "enumerator",
    "consent_given",
    "consent_date",
    "consent_purposes",
)
PERSON_FIELDS = (
    PERSON_KEY,
    *PERSON_CODES,
    *NAME_PARTS,
    "birth_date",
    "nationality",
    "national_id",
    "phone",
    *WG_DOMAINS,
    "enrolled",
)
ALL_FIELDS = frozenset(HOUSEHOLD_FIELDS) | frozenset(PERSON_FIELDS)
# Written as the person wrote them: digits inside are not converted, case is kept.
FREE_TEXT_FIELDS = frozenset(NAME_PARTS) | {"address", "enumerator"}
