"""What a payment instrument holds, per kind, checked with the libraries that know the rules.

- bank: `iban` (python-stdnum: country format and check digits), `bic` (optional), `holder`;
- wallet: `phone` (Google's libphonenumber rules through `phonenumbers`: a mobile number of its
  country, stored in E.164), `operator` (optional), `holder`;
- cash: `point`, the agent or post office where it is collected, and `holder`, who collects;
- card: `card_number` (12 to 19 digits, Luhn), `holder`.

Every message names the field and the rule, never the value: the details are personal data and
an error ends up in logs, terminals and reject files. `masked` is the form safe to show (the
last few characters); `account` the normalised number the blind index (`fingerprint`) is made
of, so that an account shared by several households is found without decrypting anything.
"""

import json
import re
from dataclasses import dataclass

import phonenumbers
from stdnum import bic, iban, luhn
from stdnum.exceptions import ValidationError

from sijill.core.errors import InvalidInput
from sijill.identity.text import TextKind, text_problem
from sijill.payments.models import BANK, CARD, CASH, INSTRUMENT_KINDS, WALLET

# The fields of each kind, required first, in the order the stored document lists them.
REQUIRED = {BANK: ("holder", "iban"), WALLET: ("holder", "phone"), CASH: ("holder", "point")}
REQUIRED[CARD] = ("holder", "card_number")
OPTIONAL = {BANK: ("bic",), WALLET: ("operator",), CASH: (), CARD: ()}
FIELDS = {kind: REQUIRED[kind] + OPTIONAL[kind] for kind in INSTRUMENT_KINDS}
ALL_FIELDS = ("holder", "iban", "bic", "phone", "operator", "point", "card_number")
BLIND_INDEX_FIELD = "payment_instrument"  # the keyring's field for instruments' fingerprints
HOLDER_MAX = 140
OPERATOR_MAX = 40
POINT = re.compile(r"[A-Z0-9-]{2,20}")
CARD_DIGITS = re.compile(r"[0-9]{12,19}")
_SEPARATORS = re.compile(r"[\s-]+")
_MOBILE = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
MASK = "••••"


@dataclass(frozen=True)
class Details:
    kind: str
    values: dict[str, str | None]  # every field of the kind, normalised (None: not given)
    masked: str
    account: str | None  # what the fingerprint is made of; None for cash

    def document(self) -> str:
        """The one JSON document stored encrypted."""
        return json.dumps(self.values, ensure_ascii=False, separators=(",", ":"))


def phone_region(national_id_scheme: str) -> str | None:
    """The country a local phone number is read in: the one whose national ID scheme the
    registry uses (`tr.tckimlik`: TR). None when the scheme names no country (`digits:N`):
    then a wallet's number is written with its + and country code."""
    prefix = national_id_scheme.partition(".")[0].upper()
    return prefix if prefix in phonenumbers.SUPPORTED_REGIONS else None


def parse_details(kind: str, raw: dict, region: str | None = None) -> Details:
    """The details of an instrument of `kind`, checked and normalised, or InvalidInput saying
    in one line what is wrong (the field and the rule, never the value)."""
    if kind not in INSTRUMENT_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(INSTRUMENT_KINDS)}")
    if not isinstance(raw, dict):
        raise InvalidInput(f"{kind} details are an object of fields: {', '.join(FIELDS[kind])}")
    unknown = set(raw) - set(FIELDS[kind])
    if unknown:
        raise InvalidInput(f"{kind} details take only these fields: {', '.join(FIELDS[kind])}")
    text: dict[str, str | None] = {}
    for name in FIELDS[kind]:
        value = raw.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{name} must be text")
        value = value.strip() if value else None
        if not value and name in REQUIRED[kind]:
            raise InvalidInput(f"{name} is required for a {kind} instrument")
        text[name] = value or None
    problem = _problem(kind, text, region)
    if problem:
        raise InvalidInput(problem)
    return _details(kind, text, region)


def _problem(kind: str, text: dict[str, str | None], region: str | None) -> str | None:
    holder = text["holder"] or ""
    if len(holder) > HOLDER_MAX:
        return f"holder must be at most {HOLDER_MAX} characters"
    found = text_problem(TextKind.NAME, holder)
    if found:
        return f"holder {found}"
    if kind == BANK:
        return iban_problem(text["iban"] or "") or bic_problem(text["bic"])
    if kind == WALLET:
        operator = text["operator"]
        if operator and len(operator) > OPERATOR_MAX:
            return f"operator must be at most {OPERATOR_MAX} characters"
        return phone_problem(text["phone"] or "", region)
    if kind == CASH:
        return point_problem(text["point"] or "")
    return card_problem(text["card_number"] or "")


def _details(kind: str, text: dict[str, str | None], region: str | None) -> Details:
    values = dict(text)
    account: str | None = None
    if kind == BANK:
        account = values["iban"] = iban.compact(text["iban"] or "")
        values["bic"] = bic.compact(text["bic"]) if text["bic"] else None
    elif kind == WALLET:
        account = values["phone"] = normalise_phone(text["phone"] or "", region)
    elif kind == CASH:
        values["point"] = (text["point"] or "").upper()
    else:
        account = values["card_number"] = compact_card(text["card_number"] or "")
    return Details(kind, values, mask(kind, values), account)


def iban_problem(value: str) -> str | None:
    try:
        iban.validate(value)
    except ValidationError as error:
        return f"iban is not a valid IBAN ({_stdnum_reason(error)})"
    return None


def bic_problem(value: str | None) -> str | None:
    if not value:
        return None
    try:
        bic.validate(value)
    except ValidationError as error:
        return f"bic is not a valid BIC ({_stdnum_reason(error)})"
    return None


def _stdnum_reason(error: ValidationError) -> str:
    # stdnum's messages name the rule only ("The number has an invalid length."): kept short.
    return str(error.message if hasattr(error, "message") else error).rstrip(".").lower()


def _parsed_phone(value: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None


def phone_form(value: str, region: str | None) -> tuple[str | None, str | None]:
    """(E.164 form, None) of a wallet's phone, or (None, what is wrong): one parse."""
    number = _parsed_phone(value, region)
    if number is None:
        if region is None and not value.startswith(("+", "00")):
            return None, "phone must start with + and the country code"
        return None, "phone is not a phone number"
    # A number of a known mobile type is valid by definition; the validity test (as costly)
    # only chooses the message for the others.
    if phonenumbers.number_type(number) not in _MOBILE:
        if not phonenumbers.is_valid_number(number):
            return None, "phone is not a valid number in its country's numbering plan"
        return None, "phone must be a mobile number for a wallet"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def phone_problem(value: str, region: str | None) -> str | None:
    return phone_form(value, region)[1]


def normalise_phone(value: str, region: str | None) -> str:
    form, problem = phone_form(value, region)
    if form is None:
        raise InvalidInput(problem or "phone is not a phone number")
    return form


def point_problem(value: str) -> str | None:
    if not POINT.fullmatch(value.upper()):
        return "point is an agent or post-office code: 2 to 20 letters A-Z, digits or dashes"
    return None


def compact_card(value: str) -> str:
    return _SEPARATORS.sub("", value)


def card_problem(value: str) -> str | None:
    digits = compact_card(value)
    if not CARD_DIGITS.fullmatch(digits):
        return "card_number must have 12 to 19 digits"
    if not luhn.is_valid(digits):
        return "card_number's check digit does not match (Luhn): a digit was probably mistyped"
    return None


def mask(kind: str, values: dict[str, str | None]) -> str:
    """The form safe to show: an IBAN's country and check digits and last four, a phone's
    last three, a card's last four; a pick-up point in full (a place, not an account)."""
    if kind == BANK:
        number = values["iban"] or ""
        return f"{number[:4]} {MASK} {number[-4:]}"
    if kind == WALLET:
        return f"{MASK} {(values['phone'] or '')[-3:]}"
    if kind == CARD:
        return f"{MASK} {(values['card_number'] or '')[-4:]}"
    return values["point"] or ""
