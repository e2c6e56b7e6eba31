"""The household form: its inputs, made from the field catalogue; what the user sent, read
into the API's own input (`registry.schemas`); and the API's errors put back next to the
input they are about, in the user's language.

An input is named by the dotted path of its field in the API's JSON (`area_code`,
`consent.given`, `members.0.national_id.number`), so an error's path names its input. Member
blocks are numbered as the form shows them; a block whose member leaves (update form) goes to
`departures`, and a new block left empty is skipped, so the API's member index is mapped back
to the block (`Sent.blocks`).
"""

import re
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from sijill.core.errors import FieldError
from sijill.core.i18n import N_, current_locale, gettext
from sijill.registry import fields
from sijill.registry.code_labels import choices
from sijill.registry.fields import Kind
from sijill.security.consent import CONSENT_PURPOSES, DATA_SHARING_PREFIX

MAX_MEMBERS = 60
# The one-time ID of a form (`secrets.token_urlsafe`), kept with the household it registered.
FORM_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
SHARING = "consent.sharing"

SECTIONS = (
    (N_("Place and registration"), ("area_code", "address", "latitude", "longitude",
     "registration_source", "registration_date", "enumerator")),
    (N_("Dwelling"), ("dwelling_tenure", "dwelling_walls", "dwelling_roof", "dwelling_floor",
     "dwelling_rooms", "water_source", "sanitation", "cooking_fuel", "electricity")),
    (N_("Assets and income"), ("assets", "livestock", "income_sources")),
    (N_("Consent"), ("consent_given", "consent_date", "consent_purposes")),
)  # fmt: skip
# A departure's date of death is asked in the block of a member already registered only.
NEW_MEMBER_SKIPS = {"death_date"}
HINTS = {
    "area_code": N_("a locality code, e.g. SJ010101"),
    "birth_date": N_("YYYY-MM-DD, or YYYY-MM, or YYYY when only the year is known"),
    "phone": N_("with + and the country code, e.g. +962791234567"),
    "nationality": N_("three letters, e.g. JOR"),
    "monthly_income": N_("in cents (minor units) a month"),
    SHARING: N_("agency codes, separated by spaces"),
}

# Messages of the API about a whole member or household, shown at the input they concern.
AT_INPUT = {
    "a member needs a given name, in Arabic or Latin script": "given_name_ar",
    "employment_sector is given only for employed members": "employment_sector",
    "the date of death is before the date of birth": "death_date",
    "give both latitude and longitude, or neither": "latitude",
    "consent purposes are listed but consent is not given": "given",
    **{f.only_when_message: f.name for f in fields.PERSON if f.only_when},
}
# Pydantic's own errors, by type, said in the user's language ({ge}, {le}... from its ctx).
BY_TYPE = {
    "missing": N_("required"),
    "string_too_long": N_("at most {max_length} characters"),
    "literal_error": N_("choose one of the listed values"),
    "int_parsing": N_("write a whole number"),
    "int_from_float": N_("write a whole number"),
    "int_type": N_("write a whole number"),
    "float_parsing": N_("write a number"),
    "float_type": N_("write a number"),
    "greater_than_equal": N_("at least {ge}"),
    "less_than_equal": N_("at most {le}"),
    "date_parsing": N_("write a date as YYYY-MM-DD"),
    "date_from_datetime_parsing": N_("write a date as YYYY-MM-DD"),
    "date_type": N_("write a date as YYYY-MM-DD"),
    "bool_parsing": N_("choose yes or no"),
    "string_pattern_mismatch": N_("not in the expected form"),
    "too_short": N_("at least one member"),
    "too_long": N_("too many entries"),
}
# A message whose text holds a value cannot be a catalog key: in French or Arabic, the field's
# own wording is shown instead.
BY_KIND = {
    Kind.NAME: N_("only letters of Arabic or Latin script, spaces, hyphens and apostrophes"),
    Kind.TEXT: N_("holds a character that is not allowed here"),
    Kind.PHONE: N_("write the number with + and the country code, e.g. +962791234567"),
    Kind.PARTIAL_DATE: N_("this is not a date in the calendar"),
}
BY_FIELD = {"school_grade": N_("only for members currently enrolled")}
ONE_HEAD = N_("a household has exactly one member whose relationship is head of household")


def _label(catalogue: fields.Catalogue, name: str) -> str:
    return getattr(catalogue[name].labels, current_locale())


def input_id(name: str) -> str:
    return "f-" + name.replace(".", "-")


@dataclass
class Sent:
    """What a form sent: the values as typed (to show them again) and its member blocks."""

    values: dict[str, Any] = field(default_factory=dict)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    # The API's member index -> the block, and its departure index -> the block.
    members: list[int] = field(default_factory=list)
    departures: list[int] = field(default_factory=list)


def _field_names(catalogue: fields.Catalogue, prefix: str = "") -> list[tuple[str, fields.Field]]:
    return [(prefix + (f.api_name or f.name), f) for f in catalogue if f.api]


HOUSEHOLD_INPUTS = _field_names(fields.HOUSEHOLD)


def read_sent(form: FormData, blocks: list[dict[str, Any]]) -> Sent:
    """The values of the form as typed, for the household and each block."""
    sent = Sent(blocks=blocks)
    names = list(HOUSEHOLD_INPUTS)
    for index, block in enumerate(blocks):
        names += _field_names(fields.PERSON, f"members.{index}.")
        sent.values[f"members.{index}.end_reason"] = form.get(f"members.{index}.end_reason", "")
        block["person_id"] = form.get(f"members.{index}.person_id") or block.get("person_id")
    for name, f in names:
        if f.kind in (Kind.CODES, Kind.PURPOSES):
            sent.values[name] = form.getlist(name)
        elif f.kind is Kind.COUNTS:
            for code in f.codes:
                sent.values[f"{name}.{code}"] = str(form.get(f"{name}.{code}", ""))
        else:
            sent.values[name] = str(form.get(name, ""))
    sent.values[SHARING] = str(form.get(SHARING, ""))
    return sent


def _value(f: fields.Field, name: str, values: dict[str, Any]) -> Any:
    if f.kind is Kind.CODES:
        return values.get(name, [])
    if f.kind is Kind.PURPOSES:
        agencies = values.get(SHARING, "").split()
        return [*values.get(name, []), *(DATA_SHARING_PREFIX + a for a in agencies)]
    if f.kind is Kind.COUNTS:
        counts = {code: values.get(f"{name}.{code}", "").strip() for code in f.codes}
        return {code: count for code, count in counts.items() if count}
    if f.kind is Kind.BOOLEAN and f.default is not None:
        return values.get(name) == "true"
    return values.get(name) or None


def _nested(target: dict[str, Any], path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if rest:
        _nested(target.setdefault(head, {}), rest, value)
    else:
        target[head] = value


def api_input(sent: Sent, *, update: bool) -> dict[str, Any]:
    """The API's JSON body for what was sent (`HouseholdCreate`, or `HouseholdUpdate` without
    its version); blanks are left as None, which the API reads as unknown."""
    body: dict[str, Any] = {}
    for name, f in HOUSEHOLD_INPUTS:
        _nested(body, name, _value(f, name, sent.values))
    body["members"], sent.members, sent.departures = [], [], []
    departures = []
    for index, block in enumerate(sent.blocks):
        prefix = f"members.{index}."
        member: dict[str, Any] = {}
        for name, f in _field_names(fields.PERSON):
            if name == "death_date" and not block.get("person_id"):
                continue
            _nested(member, name, _value(f, prefix + name, sent.values))
        document = member.get("national_id") or {}
        if not any(document.values()):
            member["national_id"] = None
        leaving = sent.values.get(prefix + "end_reason")
        if update and block.get("person_id") and leaving:
            departure = {"person_id": block["person_id"], "end_reason": leaving}
            departure["death_date"] = member.get("death_date")
            departures.append(departure)
            sent.departures.append(index)
            continue
        if not block.get("person_id") and not any(_typed(v) for v in member.values()):
            continue  # a new block left empty
        if update:
            member["person_id"] = block.get("person_id")
        body["members"].append(member)
        sent.members.append(index)
    if update:
        body["departures"] = departures
    return body


def _typed(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_typed(v) for v in value.values())
    return bool(value)


# --- errors ----------------------------------------------------------------------------------


def _block_path(path: list[Any], sent: Sent) -> list[Any]:
    """An API path with the member or departure index turned into the form's block."""
    if len(path) > 1 and path[0] in ("members", "departures") and isinstance(path[1], int):
        mapping = sent.members if path[0] == "members" else sent.departures
        if path[1] < len(mapping):
            rest = path[2:]
            if path[0] == "departures":
                rest = ["end_reason"] if not rest or rest[0] != "death_date" else rest
            return ["members", mapping[path[1]], *rest]
    return path


def _known_input(path: list[Any], sent: Sent) -> str:
    """The input an error is about: the longest start of its path naming one; else the member
    block ("members.2") or the form ("")."""
    if path == ["members"]:
        return "members"
    for end in range(len(path), 0, -1):
        name = ".".join(str(part) for part in path[:end])
        if name in sent.values or any(key.startswith(name + ".") for key in sent.values):
            if not (len(path[:end]) == 2 and path[0] == "members"):
                # A group's error is shown at its first input (`livestock.cattle`).
                group = (key for key in sent.values if key.startswith(name + "."))
                return name if name in sent.values else next(group)
            return name
    return ""


def _said(message: str, path: list[Any]) -> str:
    translated = gettext(message)
    if translated != message or current_locale() == "en":
        return translated
    name = str(path[-1]) if path else ""
    catalogue = fields.PERSON if path[:1] == ["members"] else fields.HOUSEHOLD
    kind = catalogue[name].kind if name in catalogue else None
    wording = BY_FIELD.get(name) or BY_KIND.get(kind)  # type: ignore[arg-type]
    return gettext(wording) if wording else translated


def pydantic_errors(errors: list[dict[str, Any]], sent: Sent) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for error in errors:
        path = _block_path([p for p in error["loc"] if p != "[key]"], sent)
        kind, ctx = error["type"], error.get("ctx") or {}
        if kind == "value_error":
            text = str(ctx.get("error", error["msg"]))
            one_head = path == ["members"]
            if text in AT_INPUT:
                path = [*path, AT_INPUT[text]]
            message = gettext(ONE_HEAD) if one_head else _said(text, path)
        elif error.get("input") is None and kind != "too_short":
            message = gettext(BY_TYPE["missing"])
        elif kind in BY_TYPE:
            message = gettext(BY_TYPE[kind]).format(**{k: str(v) for k, v in ctx.items()})
        else:
            message = error["msg"]
        found.setdefault(_known_input(path, sent), []).append(message)
    return found


def service_errors(errors: list[FieldError], sent: Sent) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for error in errors:
        parts = [int(p) if p.isdigit() else p for p in error.field.split(".")]
        path = _block_path(parts, sent)
        found.setdefault(_known_input(path, sent), []).append(error.translated())
    return found


# --- inputs to show --------------------------------------------------------------------------


def _options(f: fields.Field, name: str) -> list[tuple[str, str]] | None:
    language = current_locale()
    if name.startswith("wg_"):
        return choices("wg", language)
    if f.kind is Kind.CODE:
        return choices(f.name, language)
    if f.kind is Kind.BOOLEAN and f.default is None:
        return [("true", gettext("yes")), ("false", gettext("no"))]
    return None


def widget(
    catalogue: fields.Catalogue,
    f: fields.Field,
    name: str,
    values: dict[str, Any],
    errors: dict[str, list[str]],
) -> dict[str, Any]:
    """One input (or group of inputs) as the template draws it."""
    short = f.name
    shown: dict[str, Any] = {
        "name": name,
        "id": input_id(name),
        "label": _label(catalogue, short),
        "value": values.get(name, ""),
        "errors": errors.get(name, []),
        "hint": gettext(HINTS[short]) if short in HINTS else None,
        "required": f.required,
        "dir": "rtl" if short.endswith("_ar") else "auto" if f.kind is Kind.TEXT else "ltr",
        "lang": "ar" if short.endswith("_ar") else None,
    }
    language = current_locale()
    options = _options(f, short)
    if options is not None:
        shown.update(type="select", options=options)
    elif f.kind is Kind.CODES:
        shown.update(type="checkboxes", options=choices(short, language))
    elif f.kind is Kind.PURPOSES:
        shown.update(
            type="checkboxes",
            options=choices("consent_purposes", language),
            sharing=_sharing(values),
        )
    elif f.kind is Kind.COUNTS:
        counts = [
            {
                "name": f"{name}.{code}",
                "id": input_id(f"{name}.{code}"),
                "label": label,
                "value": values.get(f"{name}.{code}", ""),
                "errors": errors.get(f"{name}.{code}", []),
            }
            for code, label in choices(short, language)
        ]
        shown.update(type="counts", counts=counts)
    elif f.kind is Kind.BOOLEAN:
        shown.update(type="checkbox")
    elif f.kind is Kind.DATE:
        shown.update(type="date")
    elif f.kind is Kind.INTEGER:
        shown.update(type="number", min=f.minimum, max=f.maximum)
    else:
        shown.update(type="text", maxlength=f.max_length, decimal=f.kind is Kind.DECIMAL)
    return shown


def _sharing(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": SHARING,
        "id": input_id(SHARING),
        "label": gettext("Sharing with agencies"),
        "value": values.get(SHARING, ""),
        "hint": gettext(HINTS[SHARING]),
    }


def household_sections(values, errors) -> list[tuple[str, list[dict[str, Any]]]]:
    by_name = {f.name: (name, f) for name, f in HOUSEHOLD_INPUTS}
    return [
        (
            gettext(title),
            [widget(fields.HOUSEHOLD, by_name[n][1], by_name[n][0], values, errors) for n in names],
        )
        for title, names in SECTIONS
    ]


def member_widgets(index: int, block: dict[str, Any], values, errors) -> list[dict[str, Any]]:
    return [
        widget(fields.PERSON, f, f"members.{index}.{name}", values, errors)
        for name, f in _field_names(fields.PERSON)
        if block.get("person_id") or f.name not in NEW_MEMBER_SKIPS
    ]


def values_of(household: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The form's values for a household as the API shows it (`HouseholdPublic`)."""
    values: dict[str, Any] = {}
    data = household.model_dump(mode="json")
    for name, f in HOUSEHOLD_INPUTS:
        holder = data[f.group] if f.group else data
        value = holder.get(f.member_name)
        if f.kind is Kind.PURPOSES:
            values[name] = [p for p in value if p in CONSENT_PURPOSES]
            values[SHARING] = " ".join(
                p.removeprefix(DATA_SHARING_PREFIX) for p in value if p not in CONSENT_PURPOSES
            )
        elif f.kind is Kind.COUNTS:
            for code in f.codes:
                values[f"{name}.{code}"] = str(value.get(code, "") or "")
        else:
            values[name] = _text(value)
    blocks = []
    current = [m for m in data["members"] if m["membership_end"] is None]
    for index, member in enumerate(current):
        blocks.append({"person_id": member["person_id"]})
        for name, f in _field_names(fields.PERSON):
            holder = member.get(f.group) or {} if f.group else member
            values[f"members.{index}.{name}"] = _text(holder.get(f.member_name))
    return values, blocks


def _text(value: Any) -> Any:
    if isinstance(value, bool):  # as the form's choices write it
        return "true" if value else "false"
    return value if isinstance(value, list) else "" if value is None else str(value)
