"""Money as text: integer minor units to a decimal string and back, by integer arithmetic only.

Payment files carry amounts as decimal text (`"12.500"` for 12500 fils of a dinar, whose
currency has 3 minor units); a float on the way would round some of them. `parse_minor`
refuses more decimal places than the currency has rather than round them away.
"""

import re

_AMOUNT_RE = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")
MAX_MINOR_UNITS = 4  # ISO 4217's largest (CLF, UYW)


def _check_units(minor_units: int) -> None:
    if not 0 <= minor_units <= MAX_MINOR_UNITS:
        raise ValueError(f"a currency has 0 to {MAX_MINOR_UNITS} minor units, not {minor_units}")


def format_minor(amount_minor: int, minor_units: int) -> str:
    """`12500, 3` → `"12.500"`; `700, 0` → `"700"`: always exactly `minor_units` decimals."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError(f"an amount is integer minor units, never {type(amount_minor).__name__}")
    _check_units(minor_units)
    sign = "-" if amount_minor < 0 else ""
    whole, part = divmod(abs(amount_minor), 10**minor_units)
    return f"{sign}{whole}.{part:0{minor_units}d}" if minor_units else f"{sign}{whole}"


def parse_minor(text: str, minor_units: int) -> int:
    """`"12.5", 3` → 12500; ValueError for anything but plain decimal digits with at most
    `minor_units` decimals (no exponent, grouping, spaces or `+`)."""
    _check_units(minor_units)
    found = _AMOUNT_RE.fullmatch(text)
    if found is None:
        raise ValueError("an amount is written with digits and one decimal point, e.g. 12.500")
    sign, whole, fraction = found.groups()
    fraction = fraction or ""
    if len(fraction) > minor_units:
        raise ValueError(f"an amount has at most {minor_units} decimal places in this currency")
    value = int(whole) * 10**minor_units + int(fraction.ljust(minor_units, "0") or "0")
    return -value if sign else value
