"""Translations: language negotiation, the catalogs (complete in Arabic and French), problems
answered in the request's language, and numbers, amounts and dates per language."""

import re
import string
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import get_args

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from pydantic import ValidationError

import sijill
from factories import auth_headers, make_areas
from sijill.api import create_app
from sijill.core import i18n
from sijill.core.i18n import (
    CATALOGUED,
    SUPPORTED,
    _,
    catalog_path,
    current_locale,
    direction,
    gettext,
    negotiate,
    ngettext,
    preferences,
    translator,
    use_locale,
)
from sijill.core.i18n.formats import format_amount, format_date, format_number
from sijill.core.ids import format_id, new_id
from sijill.core.settings import Settings

FIELDS = ("The request has {count} invalid field", "The request has {count} invalid fields")


# --- negotiation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("ar-EG", "ar"),
        ("ar-EG,ar;q=0.9,en;q=0.8", "ar"),
        ("fr-CA", "fr"),
        ("FR-ca, en;q=0.5", "fr"),
        ("fr_FR", "fr"),
        ("en-GB", "en"),
        ("en;q=0.1, ar;q=0.9", "ar"),  # by weight, not by order
        ("de-DE, fr;q=0.5", "fr"),  # the first supported one
        ("fr;q=0, ar", "ar"),  # q=0: not this one
        ("ar;q=nan, fr", "fr"),
        ("ar;q=high, fr", "fr"),
    ],
)
def test_negotiate(header, expected):
    assert negotiate(header) == expected


@pytest.mark.parametrize("header", [None, "", "de", "*", "de-DE, ja;q=0.8", ",;q=1,", "arabic"])
def test_negotiate_unknown_gives_the_default(header):
    assert negotiate(header) == "en"
    assert negotiate(header, default="fr") == "fr"
    assert negotiate(header, default="ar") == "ar"


def test_preferences_ranked_by_weight_then_order():
    header = "de;q=0.5, fr-CA, *, ar;q=0.5, en;q=0"
    assert preferences(header) == ["fr-CA", "de", "ar"]


def test_language_setting():
    assert Settings.model_fields["language"].default == "en"
    assert Settings(language="ar").language == "ar"
    assert get_args(Settings.model_fields["language"].annotation) == SUPPORTED
    with pytest.raises(ValidationError):
        Settings(language="de")


# --- catalogs ----------------------------------------------------------------------------------


def test_catalogs_translate():
    assert gettext("Not found", "ar") == "غير موجود"
    assert gettext("Not found", "fr") == "Introuvable"
    assert gettext("Not found", "en") == "Not found"
    assert gettext("Not found", "ar-EG") == "غير موجود"
    assert gettext("Forbidden", "fr") == "Interdit"
    # A string without a translation is answered as written.
    assert gettext("no such message", "ar") == "no such message"
    assert translator("fr") is translator("fr-CA")  # loaded once


def test_plural_forms():
    def fields(count: int, locale: str) -> str:
        return ngettext(*FIELDS, count, locale).format(count=count)

    assert fields(1, "en") == "The request has 1 invalid field"
    assert fields(3, "en") == "The request has 3 invalid fields"
    assert fields(1, "fr") == "La requête contient 1 champ invalide"
    assert fields(3, "fr") == "La requête contient 3 champs invalides"
    # Arabic: one, two, a few (3-10), many (11-99) and other (100, ...) each have their form.
    assert fields(1, "ar") == "في الطلب حقل واحد غير صالح"
    assert fields(2, "ar") == "في الطلب حقلان غير صالحين"
    assert fields(3, "ar") == "في الطلب 3 حقول غير صالحة"
    assert fields(11, "ar") == "في الطلب 11 حقلًا غير صالح"
    assert fields(100, "ar") == "في الطلب 100 حقل غير صالح"


def test_current_locale():
    assert current_locale() == "en"
    with use_locale("fr-CA") as locale:
        assert locale == "fr" and current_locale() == "fr"
        assert _("Forbidden") == "Interdit"
        with use_locale("ar"):
            assert _("Forbidden") == "غير مسموح"
        assert gettext("Forbidden") == "Interdit"
    assert current_locale() == "en"
    with use_locale("de"):
        assert _("Forbidden") == "Forbidden"


def test_direction():
    assert direction("ar") == "rtl"
    assert direction("ar-EG") == "rtl"
    assert direction("fr") == "ltr"
    assert direction("en") == "ltr"
    with use_locale("ar"):
        assert direction() == "rtl"


def _catalog(locale: str):
    with catalog_path(locale).open("rb") as po:
        return read_po(po, locale=locale, domain=i18n.DOMAIN)


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@cache
def _code_messages() -> frozenset[str]:
    """Every string marked in the code and the web pages' templates, as `pybabel extract -F
    babel.cfg src/sijill` sees them."""
    source = Path(sijill.__file__).parent
    method_map = [("**.py", "python"), ("web/templates/**.html", "jinja2")]
    return frozenset(
        message if isinstance(message, str) else message[0]
        for _filename, _lineno, message, _comments, _context in extract_from_dir(
            source, method_map=method_map
        )
    )


@pytest.mark.parametrize("locale", CATALOGUED)
def test_every_message_is_translated(locale):
    catalog = _catalog(locale)
    messages = [message for message in catalog if message.id]
    assert messages
    for message in messages:
        assert not message.fuzzy, f"{locale}: fuzzy translation of {message.id!r}"
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.pluralizable:
            assert len(strings) == catalog.num_plurals, f"{locale}: plural forms of {ids[0]!r}"
        for text in strings:
            assert text.strip(), f"{locale}: no translation of {ids[0]!r}"
            # A translation may leave a number out ("one field"), never ask for another.
            assert _placeholders(text) <= _placeholders(ids[-1]), (locale, ids[0], text)


@pytest.mark.parametrize("locale", CATALOGUED)
def test_every_string_of_the_code_is_in_the_catalog(locale):
    catalogued = {
        message.id if isinstance(message.id, str) else message.id[0] for message in _catalog(locale)
    }
    missing = _code_messages() - catalogued
    assert not missing, (
        f"not in the {locale} catalog (refresh it: see sijill/core/i18n/__init__.py): {missing}"
    )


def test_catalogs_are_package_data_without_compiled_files():
    locale_dir = Path(i18n.__file__).parent / "locale"
    assert {path.parent.parent.name for path in locale_dir.glob("*/LC_MESSAGES/sijill.po")} == set(
        CATALOGUED
    )
    assert not list(locale_dir.rglob("*.mo"))


# --- problems in the request's language --------------------------------------------------------


@pytest.fixture
def client(settings, sessions):
    make_areas(sessions)
    with TestClient(create_app(settings), headers=auth_headers(sessions, settings)) as client:
        yield client


def _unknown_household() -> str:
    return f"/households/{format_id(new_id('household'))}"


@pytest.mark.parametrize(
    ("accept", "language", "title"),
    [
        (None, "en", "Not found"),
        ("fr-FR,fr;q=0.9", "fr", "Introuvable"),
        ("ar-EG", "ar", "غير موجود"),
        ("de-DE", "en", "Not found"),
    ],
)
def test_problem_in_the_requested_language(client, accept, language, title):
    headers = {"Accept-Language": accept} if accept else {}
    response = client.get(_unknown_household(), headers=headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["content-language"] == language
    body = response.json()
    assert body["title"] == title
    assert "no household" in body["detail"]  # details are English for now


def test_lang_query_parameter_wins(client):
    response = client.get(f"{_unknown_household()}?lang=fr", headers={"Accept-Language": "ar"})
    assert response.json()["title"] == "Introuvable"
    response = client.get(f"{_unknown_household()}?lang=xx", headers={"Accept-Language": "ar"})
    assert response.json()["title"] == "غير موجود"


def test_invalid_input_in_arabic(client):
    response = client.post(
        "/households",
        content=b"{not json",
        headers={"Content-Type": "application/json", "Accept-Language": "ar"},
    )
    assert response.status_code == 422
    body = response.json()
    assert body["title"] == "مدخلات غير صالحة"
    assert body["detail"] == "في الطلب حقل واحد غير صالح"
    assert body["errors"] == [{"field": "body", "message": "متن الطلب ليس JSON صالحًا"}]


def test_status_titles_translated(client):
    response = client.delete("/households", headers={"Accept-Language": "fr"})
    assert response.status_code == 405
    assert response.json()["title"] == "Méthode non autorisée"
    response = client.get("/households", headers={"Accept-Language": "ar", "Authorization": ""})
    assert response.status_code == 401
    assert response.json()["title"] == "المصادقة مطلوبة"
    assert response.headers["www-authenticate"] == "Bearer"


def test_configured_language_and_outer_answers(database_url):
    """SIJILL_LANGUAGE answers requests that ask for nothing; the body size limit, outside the
    app, answers in the request's language too."""
    settings = Settings(database_url=database_url, language="fr", max_request_bytes=2048)
    with TestClient(create_app(settings)) as client:
        response = client.get("/households")
        assert (response.status_code, response.json()["title"]) == (401, "Authentification requise")
        assert response.headers["content-language"] == "fr"
        response = client.get("/households", headers={"Accept-Language": "en"})
        assert response.json()["title"] == "Unauthorized"
        response = client.post(
            "/auth/token", content=b"x" * 4096, headers={"Accept-Language": "ar"}
        )
        assert response.status_code == 413
        assert response.json()["title"] == "المحتوى كبير جدًا"
        assert response.headers["content-language"] == "ar"


# --- numbers, amounts, dates -------------------------------------------------------------------


def test_amounts_from_decimal():
    amount = Decimal("1234567.5")
    assert format_amount(amount, "JOD", "en") == "JOD1,234,567.500"
    assert format_amount(amount, "EUR", "fr") == "1\u202f234\u202f567,50\xa0€"
    arabic = format_amount(amount, "JOD", "ar")
    assert "1,234,567.500" in arabic and "د.أ." in arabic
    indic = format_amount(amount, "JOD", "ar", numbering_system="arab")
    assert "١٬٢٣٤٬٥٦٧٫٥٠٠" in indic and not re.search("[0-9]", indic)
    with pytest.raises(TypeError):
        format_amount(1234.5, "JOD", "en")  # type: ignore[arg-type]


def test_numbers_with_latin_and_arabic_indic_digits():
    number = Decimal("1234567.5")
    assert format_number(number, "ar") == "1,234,567.5"
    assert format_number(number, "ar", numbering_system="arab") == "١٬٢٣٤٬٥٦٧٫٥"
    assert format_number(number, "ar-EG", numbering_system="default") == "١٬٢٣٤٬٥٦٧٫٥"
    assert format_number(number, "ar_MA") == "1.234.567,5"
    assert format_number(number, "fr") == "1\u202f234\u202f567,5"
    assert format_number(1234, "en", numbering_system="arabext") == "۱٬۲۳۴"
    with use_locale("fr"):
        assert format_number(number) == "1\u202f234\u202f567,5"
    with pytest.raises(ValueError):
        format_number(number, "ar", numbering_system="klingon")


def test_dates():
    day = date(2025, 6, 30)
    assert format_date(day, "en") == "Jun 30, 2025"
    assert format_date(day, "fr", format="long") == "30 juin 2025"
    assert format_date(day, "ar", format="long") == "30 يونيو 2025"
    assert format_date(day, "ar", format="long", numbering_system="arab") == "٣٠ يونيو ٢٠٢٥"


def test_kept_texts_never_stand_for_an_equal_value_of_another_kind_or_language():
    """Written texts are kept by value: values equal in Python but written apart (a whole
    number and a Decimal, 2.5 and 2.50 at the currency's decimals, a date) each keep their own,
    per language and digits, as Babel writes them."""
    from babel import dates as babel_dates
    from babel import numbers as babel_numbers

    for _turn in range(2):  # the second time from what was kept
        for language in ("en", "fr"):
            equal_values = (1, 1.0, 10, *map(Decimal, ("1", "1.0", "2.50", "2.5", "1E+1")))
            for value in equal_values:
                expected = babel_numbers.format_decimal(value, "#,##0.00#", language)
                assert format_number(value, language, format="#,##0.00#") == expected
            for amount in (Decimal("2.5"), Decimal("2.50"), 2):
                expected = babel_numbers.format_currency(amount, "JOD", locale=language)
                assert format_amount(amount, "JOD", language) == expected
            assert format_date(date(2026, 1, 2), language) == babel_dates.format_date(
                date(2026, 1, 2), "medium", language
            )
        assert format_number(Decimal("1234.5"), "ar", numbering_system="arab") == "١٬٢٣٤٫٥"
        assert format_number(Decimal("1234.5"), "ar") == "1,234.5"
