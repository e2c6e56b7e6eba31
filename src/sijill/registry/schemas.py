"""What the registry accepts and shows: households with their members, and their history.

Inputs (`*Create`, `*Update`) check every coded field against `registry.codes` and refuse
unknown fields, so a misspelt field name is an error rather than lost data. Outputs (`*Public`)
are typed loosely (plain strings for codes) so that a record loaded in bulk with a value the
API would refuse today can still be read.

Checks that need the database or the settings (area codes, national ID schemes, who is a
member) are made by `registry.service`, with the same dotted field names.
"""

import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from sijill.core import clock
from sijill.core.errors import InvalidInput
from sijill.core.ids import parse_id
from sijill.registry import codes
from sijill.registry.identifiers import normalise_phone
from sijill.security.consent import consent_purpose_problem

# Literal[tuple] spells out every value, so the OpenAPI document lists each code list.
Tenure = Literal[codes.HOUSEHOLD_CODES["dwelling_tenure"]]
Walls = Literal[codes.HOUSEHOLD_CODES["dwelling_walls"]]
Roof = Literal[codes.HOUSEHOLD_CODES["dwelling_roof"]]
Floor = Literal[codes.HOUSEHOLD_CODES["dwelling_floor"]]
WaterSource = Literal[codes.HOUSEHOLD_CODES["water_source"]]
Sanitation = Literal[codes.HOUSEHOLD_CODES["sanitation"]]
CookingFuel = Literal[codes.HOUSEHOLD_CODES["cooking_fuel"]]
Electricity = Literal[codes.HOUSEHOLD_CODES["electricity"]]
RegistrationSource = Literal[codes.HOUSEHOLD_CODES["registration_source"]]
Asset = Literal[codes.HOUSEHOLD_LISTS["assets"]]
IncomeSource = Literal[codes.HOUSEHOLD_LISTS["income_sources"]]
Livestock = Literal[codes.LIVESTOCK]
Relationship = Literal[codes.PERSON_CODES["relationship"]]
Sex = Literal[codes.PERSON_CODES["sex"]]
MaritalStatus = Literal[codes.PERSON_CODES["marital_status"]]
ResidencyStatus = Literal[codes.PERSON_CODES["residency_status"]]
IdType = Literal[codes.PERSON_CODES["national_id_type"]]
EducationLevel = Literal[codes.PERSON_CODES["education_level"]]
EmploymentStatus = Literal[codes.PERSON_CODES["employment_status"]]
EmploymentSector = Literal[codes.PERSON_CODES["employment_sector"]]
EndReason = Literal[codes.MEMBERSHIP_END_REASONS]
WgLevel = Annotated[int, Field(ge=min(codes.WG_LEVELS), le=max(codes.WG_LEVELS))]
Name = Annotated[str, Field(min_length=1, max_length=100)]

# For fields named `date`, whose name would hide the type inside their class.
Day = date

_PARTIAL_DATE = re.compile(r"^([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?$")


# --- small parsers shared by the schemas, the service and the API ---------------------------


def parse_partial_date(text: str) -> tuple[date, str]:
    """`YYYY`, `YYYY-MM` or `YYYY-MM-DD` as (first day of what is known, precision)."""
    match = _PARTIAL_DATE.match(text.strip())
    if not match:
        raise ValueError("a date of birth is written YYYY, YYYY-MM or YYYY-MM-DD")
    year, month, day = match.groups()
    try:
        value = date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        raise ValueError(f"'{text}' is not a date in the calendar") from None
    precision = "day" if day else "month" if month else "year"
    return value, precision


def format_partial_date(value: date | None, precision: str | None) -> str | None:
    if value is None:
        return None
    if precision == "year":
        return f"{value.year:04d}"
    if precision == "month":
        return f"{value.year:04d}-{value.month:02d}"
    return value.isoformat()


def parse_as_of(text: str) -> datetime:
    """An `as_of` instant: a date means the end of that day (UTC); a time without zone is UTC."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time.max, UTC)
        moment = datetime.fromisoformat(value)
        # A zone offset can push a moment at the edge of the calendar out of it.
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(
            f"'{text}' is not a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM:SSZ)"
        ) from None


def _person_id(text: str) -> str:
    try:
        return str(parse_id("person", text))
    except InvalidInput as error:
        raise ValueError(error.detail) from None


def _utc(value: datetime) -> datetime:
    # SQLite hands back timestamps without their zone; everything stored is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


PersonRegistryId = Annotated[
    str,
    AfterValidator(_person_id),
    Field(description="a person registry ID (12 digits, the last a check digit)"),
]
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


# --- inputs ----------------------------------------------------------------------------------


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_unknown(cls, value: Any) -> Any:
        # An empty form field means "not known", as an empty cell does in the exchange format.
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str) and "\x00" in value:
            # PostgreSQL cannot store it, and no name or address holds one.
            raise ValueError("contains a NUL character")
        return value


class NationalIdIn(_Input):
    type: IdType = Field(description="the kind of identity document")
    number: str = Field(min_length=1, max_length=64)


class Consent(_Input):
    given: bool = False
    date: Day | None = None
    purposes: list[str] = Field(
        default_factory=list,
        description="`eligibility_assessment`, `payment`, `research` or "
        "`data_sharing:<agency code>`",
    )

    @field_validator("purposes")
    @classmethod
    def _known_purposes(cls, purposes: list[str]) -> list[str]:
        for purpose in purposes:
            problem = consent_purpose_problem(purpose)
            if problem:
                raise ValueError(problem)
        return list(dict.fromkeys(purposes))

    @model_validator(mode="after")
    def _purposes_need_consent(self) -> "Consent":
        if self.purposes and not self.given:
            raise ValueError("consent purposes are listed but consent is not given")
        return self


class PersonCreate(_Input):
    relationship: Relationship = Field(description="relationship to the head of household")
    given_name_ar: Name | None = None
    father_name_ar: Name | None = None
    grandfather_name_ar: Name | None = None
    family_name_ar: Name | None = None
    given_name_lat: Name | None = None
    father_name_lat: Name | None = None
    grandfather_name_lat: Name | None = None
    family_name_lat: Name | None = None
    sex: Sex | None = None
    birth_date: str | None = Field(
        None, description="YYYY-MM-DD, or YYYY-MM (day unknown), or YYYY (only the year known)"
    )
    death_date: date | None = None
    marital_status: MaritalStatus | None = None
    nationality: str | None = Field(None, pattern=r"^[A-Z]{3}$", description="ISO 3166-1 alpha-3")
    residency_status: ResidencyStatus | None = None
    national_id: NationalIdIn | None = None
    phone: str | None = Field(None, max_length=40, description="E.164, e.g. +962791234567")
    wg_seeing: WgLevel | None = None
    wg_hearing: WgLevel | None = None
    wg_walking: WgLevel | None = None
    wg_cognition: WgLevel | None = None
    wg_selfcare: WgLevel | None = None
    wg_communication: WgLevel | None = None
    education_level: EducationLevel | None = None
    enrolled: bool | None = None
    employment_status: EmploymentStatus | None = None
    employment_sector: EmploymentSector | None = None

    @field_validator("birth_date")
    @classmethod
    def _partial_birth_date(cls, value: str | None) -> str | None:
        if value is None:
            return None
        born, precision = parse_partial_date(value)
        if born > clock.utcnow().date():
            raise ValueError("a date of birth cannot be in the future")
        return format_partial_date(born, precision)

    @field_validator("death_date")
    @classmethod
    def _past_death(cls, value: date | None) -> date | None:
        if value is not None and value > clock.utcnow().date():
            raise ValueError("a date of death cannot be in the future")
        return value

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        return None if value is None else normalise_phone(value)

    @model_validator(mode="after")
    def _consistent(self) -> "PersonCreate":
        if not (self.given_name_ar or self.given_name_lat):
            raise ValueError("a member needs a given name, in Arabic or Latin script")
        if self.employment_sector and self.employment_status != "employed":
            raise ValueError("employment_sector is given only for employed members")
        born = self.birth()[0]
        if self.death_date and born and self.death_date < born:
            raise ValueError("the date of death is before the date of birth")
        return self

    def birth(self) -> tuple[date | None, str | None]:
        return parse_partial_date(self.birth_date) if self.birth_date else (None, None)


class MemberUpdate(PersonCreate):
    person_id: PersonRegistryId | None = Field(
        None, description="the member's person registry ID; leave out for a new person"
    )


class Departure(_Input):
    """A member who left the household, and why."""

    person_id: PersonRegistryId
    end_reason: EndReason
    death_date: date | None = Field(None, description="only with end_reason `death`")

    @model_validator(mode="after")
    def _death_date_only_for_death(self) -> "Departure":
        if self.death_date is not None and self.end_reason != "death":
            raise ValueError("death_date is given only when end_reason is death")
        if self.death_date is not None and self.death_date > clock.utcnow().date():
            raise ValueError("a date of death cannot be in the future")
        return self


class HouseholdFields(_Input):
    area_code: str = Field(min_length=1, max_length=32, description="a locality code")
    address: str | None = Field(None, max_length=500)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    dwelling_tenure: Tenure | None = None
    dwelling_walls: Walls | None = None
    dwelling_roof: Roof | None = None
    dwelling_floor: Floor | None = None
    dwelling_rooms: int | None = Field(None, ge=0, le=100, description="sleeping rooms")
    water_source: WaterSource | None = None
    sanitation: Sanitation | None = None
    cooking_fuel: CookingFuel | None = None
    electricity: Electricity | None = None
    assets: list[Asset] = Field(default_factory=list)
    livestock: dict[Livestock, Annotated[int, Field(ge=0, le=1_000_000)]] = Field(
        default_factory=dict, description="number of animals of each kind"
    )
    income_sources: list[IncomeSource] = Field(default_factory=list)
    registration_source: RegistrationSource | None = None
    registration_date: date | None = None
    enumerator: str | None = Field(None, max_length=64)
    consent: Consent = Field(default_factory=Consent)

    @field_validator("assets", "income_sources")
    @classmethod
    def _as_set(cls, values: list[str], info) -> list[str]:
        # Lists are sets: kept in code-list order so reordering is not a change.
        order = codes.HOUSEHOLD_LISTS[info.field_name]
        return sorted(set(values), key=order.index)

    @field_validator("livestock")
    @classmethod
    def _no_zero_herds(cls, herds: dict[str, int]) -> dict[str, int]:
        return {kind: herds[kind] for kind in codes.LIVESTOCK if herds.get(kind)}

    @model_validator(mode="after")
    def _both_coordinates(self):
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give both latitude and longitude, or neither")
        return self


def _one_head(members: list[PersonCreate]) -> list[PersonCreate]:
    heads = sum(member.relationship == "head" for member in members)
    if heads != 1:
        raise ValueError(f"a household has exactly one member with relationship head, not {heads}")
    return members


class HouseholdCreate(HouseholdFields):
    members: list[PersonCreate] = Field(min_length=1, max_length=60)

    _one_head = field_validator("members")(_one_head)


class HouseholdUpdate(HouseholdFields):
    """The whole household as it should now be, based on the version the client read.

    Members listed with their `person_id` keep their identity, members without one are new
    persons, and every current member left out must be listed in `departures` with the reason.
    """

    version: int = Field(ge=1, description="the version this change was based on")
    members: list[MemberUpdate] = Field(min_length=1, max_length=60)
    departures: list[Departure] = Field(default_factory=list, max_length=60)

    _one_head = field_validator("members")(_one_head)


# --- outputs ---------------------------------------------------------------------------------


class NationalIdPublic(BaseModel):
    type: str
    number: str


class ConsentPublic(BaseModel):
    given: bool
    date: Day | None
    purposes: list[str]


class PersonPublic(BaseModel):
    person_id: str
    version: int
    valid_from: UtcDatetime
    given_name_ar: str | None
    father_name_ar: str | None
    grandfather_name_ar: str | None
    family_name_ar: str | None
    given_name_lat: str | None
    father_name_lat: str | None
    grandfather_name_lat: str | None
    family_name_lat: str | None
    sex: str | None
    birth_date: str | None = Field(description="YYYY-MM-DD, YYYY-MM or YYYY: as much as is known")
    death_date: date | None
    marital_status: str | None
    nationality: str | None
    residency_status: str | None
    national_id: NationalIdPublic | None
    phone: str | None
    wg_seeing: int | None
    wg_hearing: int | None
    wg_walking: int | None
    wg_cognition: int | None
    wg_selfcare: int | None
    wg_communication: int | None
    education_level: str | None
    enrolled: bool | None
    employment_status: str | None
    employment_sector: str | None


class MemberPublic(PersonPublic):
    relationship: str
    membership_start: date | None
    membership_end: date | None
    end_reason: str | None


class HouseholdStatePublic(BaseModel):
    household_id: str
    version: int
    valid_from: UtcDatetime
    valid_to: UtcDatetime | None = Field(description="when this version was replaced, if it was")
    recorded_by: str
    area_code: str
    address: str | None
    latitude: float | None
    longitude: float | None
    dwelling_tenure: str | None
    dwelling_walls: str | None
    dwelling_roof: str | None
    dwelling_floor: str | None
    dwelling_rooms: int | None
    water_source: str | None
    sanitation: str | None
    cooking_fuel: str | None
    electricity: str | None
    assets: list[str]
    livestock: dict[str, int]
    income_sources: list[str]
    registration_source: str | None
    registration_date: date | None
    enumerator: str | None
    consent: ConsentPublic


class HouseholdPublic(HouseholdStatePublic):
    members: list[MemberPublic]


class HouseholdsPublic(BaseModel):
    data: list[HouseholdPublic]
    count: int = Field(description="households matching the search, on all pages")


class MembershipPublic(BaseModel):
    person_id: str
    relationship: str
    start_date: date | None
    end_date: date | None
    end_reason: str | None
    recorded_at: UtcDatetime


class HouseholdHistoryPublic(BaseModel):
    household_id: str
    data: list[HouseholdStatePublic] = Field(description="every version, oldest first")
    count: int
    memberships: list[MembershipPublic] = Field(
        description="every membership the household has had, in the order they were recorded"
    )
