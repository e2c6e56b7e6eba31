"""What the registry accepts and shows: households with their members, and their history.

The fields, their types, code lists and bounds come from the field catalogue
(`registry.fields`): `_input_field` and `_output_field` turn each catalogue entry into a
Pydantic field, and the models below add only what a catalogue entry cannot say (checks across
fields, the shape of nested objects, the bookkeeping of versions).

Inputs (`*Create`, `*Update`) check every coded field against its code list and refuse unknown
fields, so a misspelt field name is an error rather than lost data. Outputs (`*Public`) are typed
loosely (plain strings for codes) so that a record loaded in bulk with a value the API would
refuse today can still be read.

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
    create_model,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from sijill.core import clock
from sijill.core.errors import InvalidInput
from sijill.core.i18n import N_
from sijill.core.ids import parse_id
from sijill.identity.phones import normalise_phone
from sijill.identity.text import TextKind, clean_text
from sijill.registry import codes, fields
from sijill.registry.fields import Kind
from sijill.security.consent import consent_purpose_problem

EndReason = Literal[codes.MEMBERSHIP_END_REASONS]

_PARTIAL_DATE = re.compile(r"^([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?$")


# --- small parsers shared by the schemas, the service and the API ---------------------------


def parse_partial_date(text: str) -> tuple[date, str]:
    """`YYYY`, `YYYY-MM` or `YYYY-MM-DD` as (first day of what is known, precision)."""
    match = _PARTIAL_DATE.match(text.strip())
    if not match:
        raise ValueError(N_("a date of birth is written YYYY, YYYY-MM or YYYY-MM-DD"))
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


# --- catalogue fields as Pydantic fields ---------------------------------------------------

# Shown on outputs, where a date of birth is as precise as it was known.
_PARTIAL_DATE_SHOWN = "YYYY-MM-DD, YYYY-MM or YYYY: as much as is known"


def _described(field: fields.Field, **constraints: Any) -> dict[str, Any]:
    if field.description:
        constraints["description"] = field.description
    return constraints


def _following(kind: TextKind) -> AfterValidator:
    """The characters rule of `identity.text`: a refused value answers 422 naming the field
    and the character, never the value; an accepted one is kept NFC-normalised."""
    return AfterValidator(lambda value: clean_text(kind, value))


def _input_field(field: fields.Field, *, required: bool | None = None) -> tuple[Any, FieldInfo]:
    """(annotation, FieldInfo) of a catalogue field in the input models. Literal[tuple] spells
    out every value, so the OpenAPI document lists each code list."""
    required = field.required if required is None else required
    kind, extra = field.kind, _described(field)
    optional = {} if required else {"default": None}
    if kind is Kind.CODES:
        return list[Literal[field.codes]], Field(default_factory=list, **extra)
    if kind is Kind.PURPOSES:
        return list[str], Field(default_factory=list, **extra)
    if kind is Kind.COUNTS:
        count = Annotated[int, Field(ge=field.minimum, le=field.maximum)]
        return dict[Literal[field.codes], count], Field(default_factory=dict, **extra)
    if kind is Kind.BOOLEAN and field.default is not None:
        return bool, Field(default=field.default, **extra)
    if kind is Kind.NAME:
        # The bounds on the string itself, as the OpenAPI document has always shown them.
        name = Annotated[
            str,
            Field(min_length=1, max_length=field.max_length),
            _following(field.text_kind),
        ]
        return name if required else name | None, Field(**optional, **extra)
    if kind is Kind.AREA or kind is Kind.DOCUMENT_NUMBER:
        extra.update(min_length=1, max_length=field.max_length)
        annotation: Any = str
    elif kind is Kind.CODE:
        annotation = Literal[field.codes]
    elif kind is Kind.TEXT:
        bounded = Field(max_length=field.max_length)
        annotation = Annotated[str, bounded, _following(field.text_kind)]
    elif kind is Kind.PHONE:
        annotation, extra["max_length"] = str, field.max_length
    elif kind is Kind.COUNTRY:
        annotation, extra["pattern"] = str, fields.COUNTRY_PATTERN
    elif kind in (Kind.INTEGER, Kind.DECIMAL):
        annotation = int if kind is Kind.INTEGER else float
        extra.update(ge=field.minimum, le=field.maximum)
    else:
        annotation = {Kind.BOOLEAN: bool, Kind.DATE: date, Kind.PARTIAL_DATE: str}[kind]
    return (annotation if required else annotation | None), Field(**optional, **extra)


def _output_field(field: fields.Field, *, required: bool | None = None) -> tuple[Any, FieldInfo]:
    """(annotation, FieldInfo) of a catalogue field in the output models: loosely typed."""
    required = field.required if required is None else required
    kind = field.kind
    if kind in (Kind.CODES, Kind.PURPOSES):
        return list[str], Field()
    if kind is Kind.COUNTS:
        return dict[str, int], Field()
    if kind is Kind.BOOLEAN and field.default is not None:
        return bool, Field()
    if kind is Kind.PARTIAL_DATE:
        return str | None, Field(description=_PARTIAL_DATE_SHOWN)
    annotation = {
        Kind.INTEGER: int,
        Kind.DECIMAL: float,
        Kind.BOOLEAN: bool,
        Kind.DATE: date,
    }.get(kind, str)
    return (annotation if required else annotation | None), Field()


def _flat(catalogue: fields.Catalogue, make, *, output: bool = False) -> dict[str, Any]:
    """The catalogue's API fields that are not nested, by name, in catalogue order; each nested
    group's place is held by its name (filled in by the caller)."""
    declared: dict[str, Any] = {}
    for field in catalogue:
        if not field.api or (output and field.membership):
            continue
        if field.group:
            declared.setdefault(field.group, None)
        else:
            declared[field.name] = make(field)
    return declared


def _group(
    name: str, group: str, catalogue: fields.Catalogue, make, base: type[BaseModel] = BaseModel
) -> type[BaseModel]:
    """A nested object of the API (`consent`, `national_id`) made of a catalogue group."""
    members = {field.member_name: make(field) for field in catalogue.group(group)}
    return create_model(name, __base__=base, **members)


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


def _required_input(field: fields.Field) -> tuple[Any, FieldInfo]:
    return _input_field(field, required=True)


def _required_output(field: fields.Field) -> tuple[Any, FieldInfo]:
    return _output_field(field, required=True)


# A document is its type and its number, both given.
NationalIdIn = _group("NationalIdIn", "national_id", fields.PERSON, _required_input, _Input)


class _ConsentChecks(_Input):
    @field_validator("purposes", check_fields=False)
    @classmethod
    def _known_purposes(cls, purposes: list[str]) -> list[str]:
        for purpose in purposes:
            problem = consent_purpose_problem(purpose)
            if problem:
                raise ValueError(problem)
        return list(dict.fromkeys(purposes))

    @model_validator(mode="after")
    def _purposes_need_consent(self):
        if self.purposes and not self.given:
            raise ValueError(N_("consent purposes are listed but consent is not given"))
        return self


Consent = _group("Consent", "consent", fields.HOUSEHOLD, _input_field, _ConsentChecks)


# Fields given only when another field has a value (`Field.only_when`).
_CONDITIONAL = tuple(field for field in fields.PERSON if field.only_when and field.api)


class _PersonChecks(_Input):
    @field_validator("birth_date", check_fields=False)
    @classmethod
    def _partial_birth_date(cls, value: str | None) -> str | None:
        if value is None:
            return None
        born, precision = parse_partial_date(value)
        if born > clock.utcnow().date():
            raise ValueError(N_("a date of birth cannot be in the future"))
        return format_partial_date(born, precision)

    @field_validator("death_date", check_fields=False)
    @classmethod
    def _past_death(cls, value: date | None) -> date | None:
        if value is not None and value > clock.utcnow().date():
            raise ValueError(N_("a date of death cannot be in the future"))
        return value

    @field_validator(*(f.name for f in fields.PERSON.of_kind(Kind.PHONE)), check_fields=False)
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        return None if value is None else normalise_phone(value)

    @model_validator(mode="after")
    def _consistent(self):
        if not (self.given_name_ar or self.given_name_lat):
            raise ValueError(N_("a member needs a given name, in Arabic or Latin script"))
        if self.employment_sector and self.employment_status != "employed":
            raise ValueError(N_("employment_sector is given only for employed members"))
        for field in _CONDITIONAL:
            other, value = field.only_when
            if getattr(self, field.name) is not None and getattr(self, other) != value:
                raise ValueError(field.only_when_message)
        born = self.birth()[0]
        if self.death_date and born and self.death_date < born:
            raise ValueError(N_("the date of death is before the date of birth"))
        return self

    def birth(self) -> tuple[date | None, str | None]:
        return parse_partial_date(self.birth_date) if self.birth_date else (None, None)


_person_fields = _flat(fields.PERSON, _input_field)
_person_fields["national_id"] = (NationalIdIn | None, Field(None))
PersonCreate = create_model("PersonCreate", __base__=_PersonChecks, **_person_fields)


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
            raise ValueError(N_("death_date is given only when end_reason is death"))
        if self.death_date is not None and self.death_date > clock.utcnow().date():
            raise ValueError(N_("a date of death cannot be in the future"))
        return self


_SETS = tuple(field.name for field in fields.HOUSEHOLD.of_kind(Kind.CODES))
_HERDS = tuple(field.name for field in fields.HOUSEHOLD.of_kind(Kind.COUNTS))


class _HouseholdChecks(_Input):
    @field_validator(*_SETS, check_fields=False)
    @classmethod
    def _as_set(cls, values: list[str], info) -> list[str]:
        # Lists are sets: kept in code-list order so reordering is not a change.
        order = fields.HOUSEHOLD[info.field_name].codes
        return sorted(set(values), key=order.index)

    @field_validator(*_HERDS, check_fields=False)
    @classmethod
    def _no_zero_herds(cls, herds: dict[str, int], info) -> dict[str, int]:
        kinds = fields.HOUSEHOLD[info.field_name].codes
        return {kind: herds[kind] for kind in kinds if herds.get(kind)}

    @model_validator(mode="after")
    def _both_coordinates(self):
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError(N_("give both latitude and longitude, or neither"))
        return self


_household_fields = _flat(fields.HOUSEHOLD, _input_field)
_household_fields["consent"] = (Consent, Field(default_factory=Consent))
HouseholdFields = create_model("HouseholdFields", __base__=_HouseholdChecks, **_household_fields)


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


def column_values(data: BaseModel, catalogue: fields.Catalogue) -> dict[str, Any]:
    """An input's fields as the columns that store them (`Field.columns`), but for the
    identifiers, which only `registry.identifiers` writes, and the membership's own fields."""
    values: dict[str, Any] = {}
    for field in catalogue:
        if not field.columns or field.identifier:
            continue
        holder = getattr(data, field.group) if field.group else data
        value = getattr(holder, field.member_name)
        if field.kind is Kind.PARTIAL_DATE:
            date_column, precision_column = (column.name for column in field.columns)
            known, precision = parse_partial_date(value) if value else (None, None)
            values[date_column], values[precision_column] = known, precision
        elif isinstance(value, list | dict):
            values[field.name] = type(value)(value)  # a copy: the row must not share the input's
        else:
            values[field.name] = value
    return values


# --- outputs ---------------------------------------------------------------------------------


NationalIdPublic = _group("NationalIdPublic", "national_id", fields.PERSON, _required_output)
ConsentPublic = _group("ConsentPublic", "consent", fields.HOUSEHOLD, _output_field)


class _PersonShown(BaseModel):
    person_id: str
    version: int
    valid_from: UtcDatetime


_person_shown = _flat(fields.PERSON, _output_field, output=True)
_person_shown["national_id"] = (NationalIdPublic | None, Field())
PersonPublic = create_model("PersonPublic", __base__=_PersonShown, **_person_shown)


MERGED_INTO = Field(
    None,
    description="set when this record was found to be another person's and merged into them: "
    "that person's registry ID (their record holds them from then on)",
)


class MemberPublic(PersonPublic):
    relationship: str
    membership_start: date | None
    membership_end: date | None
    end_reason: str | None
    merged_into: str | None = MERGED_INTO


class _HouseholdShown(BaseModel):
    household_id: str
    version: int
    valid_from: UtcDatetime
    valid_to: UtcDatetime | None = Field(description="when this version was replaced, if it was")
    recorded_by: str


_household_shown = _flat(fields.HOUSEHOLD, _output_field, output=True)
_household_shown["consent"] = (ConsentPublic, Field())
HouseholdStatePublic = create_model(
    "HouseholdStatePublic", __base__=_HouseholdShown, **_household_shown
)


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
    merged_into: str | None = MERGED_INTO


class HouseholdHistoryPublic(BaseModel):
    household_id: str
    data: list[HouseholdStatePublic] = Field(description="every version, oldest first")
    count: int
    memberships: list[MembershipPublic] = Field(
        description="every membership the household has had, in the order they were recorded"
    )
