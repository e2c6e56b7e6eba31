"""Numbers, amounts and dates written the way a language (and country) writes them: thin
over `babel.numbers` and `babel.dates`.

`locale` is any Babel locale identifier (`ar`, `ar-EG`, `ar_MA`, `fr`, `en`), by default the
current language (`sijill.core.i18n.current_locale`); a country's own conventions come from
its territory (`ar_MA` groups `1.234,5`, `ar_EG` `1,234.5`).

`numbering_system` chooses the digits: `latn` (0-9, the default, used across the Maghreb and
by most systems), `arab` (Arabic-Indic ٠-٩ with the Arabic separators ٬ and ٫, common in the
Mashreq), `arabext` (Eastern Arabic-Indic ۰-۹), or `default`, the locale's own choice. Babel
takes the separators of a numbering system from CLDR but always writes Latin digits, so the
digits are substituted here after formatting.

Amounts are `Decimal` (or a whole number), never `float`: a float has already lost cents.
"""

from datetime import date, datetime
from datetime import tzinfo as TimeZone
from decimal import Decimal
from functools import lru_cache

from babel import Locale
from babel import dates as babel_dates
from babel import lists as babel_lists
from babel import numbers as babel_numbers

from sijill.core.i18n import current_locale

DIGITS = {
    "latn": "0123456789",
    "arab": "٠١٢٣٤٥٦٧٨٩",
    "arabext": "۰۱۲۳۴۵۶۷۸۹",
}
_LATIN = DIGITS["latn"]


def _locale(locale: str | None) -> Locale:
    return _parsed_locale(locale or current_locale())


@lru_cache(maxsize=64)
def _parsed_locale(identifier: str) -> Locale:
    # Kept: a page formats dozens of numbers and dates, and parsing an identifier is most of
    # the cost of formatting one. Locale objects are only read.
    return Locale.parse(identifier.replace("-", "_"))


def _system(locale: Locale, numbering_system: str) -> str:
    system = locale.default_numbering_system if numbering_system == "default" else numbering_system
    if system not in DIGITS:
        raise ValueError(f"unknown numbering system {system!r}; known: {', '.join(DIGITS)}")
    return system


def _digits(text: str, system: str) -> str:
    if system == "latn":
        return text
    return text.translate(str.maketrans(_LATIN, DIGITS[system]))


def format_number(
    number: int | Decimal | float,
    locale: str | None = None,
    *,
    numbering_system: str = "latn",
    format: str | None = None,
) -> str:
    """`1234567.5` → `1,234,567.5` (en), `1 234 567,5` (fr), `١٬٢٣٤٬٥٦٧٫٥` (ar, arab)."""
    return _kept(_number, number, locale or current_locale(), numbering_system, format)


# A page writes the same numbers, amounts and dates again and again (run numbers, household
# sizes, its cycle's days, the same benefit), and Babel takes longer to write one than the
# rest of the page takes per value: the texts written are kept, by value and language. The key
# holds the value's type and text beside it: Decimal("1.0") == Decimal("1.00"), written apart.
_TEXTS_KEPT = 8192


def _kept(write, value, *context):
    try:
        hash(value)
    except TypeError:  # unhashable (a signalling NaN): written every time
        return write(value, *context)
    return _kept_text(write, value, type(value), str(value), *context)


@lru_cache(maxsize=_TEXTS_KEPT)
def _kept_text(write, value, _kind, _text, *context):
    return write(value, *context)


def _number(number, identifier: str, numbering_system: str, format: str | None) -> str:
    parsed = _parsed_locale(identifier)
    system = _system(parsed, numbering_system)
    text = babel_numbers.format_decimal(number, format, parsed, numbering_system=system)
    return _digits(text, system)


def format_amount(
    amount: int | Decimal,
    currency: str,
    locale: str | None = None,
    *,
    numbering_system: str = "latn",
) -> str:
    """An amount of money with its currency and the currency's own decimals
    (`Decimal("1234.5"), "JOD"` → `JOD1,234.500` in English, `1 234,500 JOD` in French)."""
    if isinstance(amount, float) or not isinstance(amount, int | Decimal):
        raise TypeError(f"an amount is a Decimal, never {type(amount).__name__}")
    return _kept(_amount, amount, currency, locale or current_locale(), numbering_system)


def _amount(amount: int | Decimal, currency: str, identifier: str, numbering_system: str) -> str:
    parsed = _parsed_locale(identifier)
    system = _system(parsed, numbering_system)
    text = babel_numbers.format_currency(amount, currency, locale=parsed, numbering_system=system)
    return _digits(text, system)


def format_date(
    value: date,
    locale: str | None = None,
    *,
    format: str = "medium",
    numbering_system: str = "latn",
) -> str:
    """`date(2025, 6, 30)` → `Jun 30, 2025` (en), `30 juin 2025` (fr), `30‏/06‏/2025` (ar)."""
    return _kept(_date, value, locale or current_locale(), format, numbering_system)


def _date(value: date, identifier: str, format: str, numbering_system: str) -> str:
    parsed = _parsed_locale(identifier)
    system = _system(parsed, numbering_system)
    return _digits(babel_dates.format_date(value, format, parsed), system)


def format_datetime(
    value: datetime,
    locale: str | None = None,
    *,
    format: str = "medium",
    tzinfo: TimeZone | None = None,
    numbering_system: str = "latn",
) -> str:
    """A moment in the locale's way, in the time zone `tzinfo` (by default its own)."""
    parsed = _locale(locale)
    system = _system(parsed, numbering_system)
    text = babel_dates.format_datetime(value, format, tzinfo, parsed)
    return _digits(text, system)


def format_percent(
    share: Decimal, locale: str | None = None, *, numbering_system: str = "latn"
) -> str:
    """A share as a percentage to a tenth: `Decimal("0.125")` → `12.5%` (en), `12,5 %` (fr)."""
    if isinstance(share, float) or not isinstance(share, int | Decimal):
        raise TypeError(f"a share is a Decimal, never {type(share).__name__}")
    parsed = _locale(locale)
    system = _system(parsed, numbering_system)
    text = babel_numbers.format_percent(
        Decimal(share).quantize(Decimal("0.001")),
        locale=parsed,
        decimal_quantization=False,
        numbering_system=system,
    )
    return _digits(text, system)


def format_list(items: list[str], locale: str | None = None) -> str:
    """`["a", "b", "c"]` → `a, b, and c` (en), `a, b et c` (fr), `a وb وc` (ar)."""
    return babel_lists.format_list(items, locale=_locale(locale))
