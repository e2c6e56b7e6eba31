"""Value dates on a country's banking calendar: weekend days and public holidays are settings
(`SIJILL_PAYMENT_WEEKEND`, `SIJILL_PAYMENT_HOLIDAYS`), since both differ across the region
(Friday-Saturday in most of the Mashreq and the Gulf, Saturday-Sunday in the Maghreb)."""

from datetime import date, timedelta

from sijill.core.errors import InvalidInput
from sijill.core.settings import Settings


def holidays(settings: Settings) -> frozenset[date]:
    days = set()
    for text in settings.payment_holidays:
        try:
            days.add(date.fromisoformat(text))
        except ValueError:
            raise InvalidInput(
                f"SIJILL_PAYMENT_HOLIDAYS: {text!r} is not an ISO date (YYYY-MM-DD)"
            ) from None
    return frozenset(days)


def is_business_day(day: date, settings: Settings) -> bool:
    return day.isoweekday() not in settings.payment_weekend and day not in holidays(settings)


def value_date(settings: Settings, wanted: date) -> date:
    """The first business day on or after `wanted`."""
    weekend = set(settings.payment_weekend)
    if len(weekend) >= 7:
        raise InvalidInput("SIJILL_PAYMENT_WEEKEND leaves no business day in the week")
    off = holidays(settings)
    day = wanted
    for _ in range(366):
        if day.isoweekday() not in weekend and day not in off:
            return day
        day += timedelta(days=1)
    raise InvalidInput("no business day within a year of the value date: check the holidays")
