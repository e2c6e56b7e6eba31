"""Translations: gettext catalogs (Babel) in Arabic, French and English, for every layer.

Source strings are English, written in the code; `locale/{ar,fr}/LC_MESSAGES/sijill.po` hold
their translations. English needs no catalog: a string without a translation is answered as
written, in English.

Marking strings, in any layer:

    from sijill.core.i18n import N_, _, ngettext

    title = N_("Not found")     # marked for the catalogs, translated later where the language
                                # is known (class attributes, module constants): gettext(title)
    _("Forbidden")              # translated now, into the current language
    ngettext("{n} field", "{n} fields", n).format(n=n)   # plural forms (Arabic has six)

The current language is a context variable: the API sets it for each request from the `lang`
query parameter, else the Accept-Language header, else the `language` setting
(`SIJILL_LANGUAGE`, default English) — see `sijill.middleware.RequestLanguage`. Outside a
request it is English unless code chooses one with `use_locale(locale)`. Put values in with
`str.format` after translating, never an f-string inside `_()`: the catalog key must be the
fixed text.

Catalogs are loaded, not compiled ahead: the first time a language is asked for, its `.po`
file is read with `babel.messages.pofile.read_po`, turned into `.mo` bytes in memory
(`babel.messages.mofile.write_mo`) and parsed by `babel.support.Translations` (the standard
library's GNUTranslations, so plural forms come from the catalog's own `Plural-Forms` header);
the result is kept for the life of the process. No generated `.mo` file exists anywhere — not
in git, not in the wheel, not in a cache that could go stale — and a wheel needs nothing but
the `.po` files it ships (hatch includes every file under `src/sijill`). Fuzzy entries are
left out, so a string whose translation is doubtful is answered in English. Loading a
catalog takes milliseconds, once per language per process.

Refreshing the catalogs after adding or changing strings (Babel's CLI, installed with it;
`babel.cfg` at the repository root says which files to scan):

    .venv/bin/pybabel extract -F babel.cfg --add-location=file --sort-output \\
        -c TRANSLATORS: -o /tmp/sijill.pot src/sijill
    .venv/bin/pybabel update -i /tmp/sijill.pot -d src/sijill/core/i18n/locale -D sijill \\
        --ignore-obsolete

then fill in every empty `msgstr` of `ar` and `fr`, and check (then remove the `fuzzy` flag
of) each one `update` guessed from a similar string: tests/test_i18n.py fails while a string
of the code has no translation, an empty one or a fuzzy one. The `.pot` template is
generated, so it stays out of the repository. A new language: `pybabel init -i
/tmp/sijill.pot -d src/sijill/core/i18n/locale -D sijill -l xx`, then add it to `SUPPORTED`
and to the `language` setting.

Babel itself is imported at first use, not with this module: `sijill.core.errors` marks its
titles with `N_`, and a CLI command that never translates should not pay for loading Babel.
Locale-aware numbers, amounts and dates are in `sijill.core.i18n.formats`.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache, lru_cache
from importlib.resources import files
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from babel.support import NullTranslations

SUPPORTED = ("ar", "fr", "en")
DEFAULT = "en"
DOMAIN = "sijill"
# Languages with a catalog; English is the source language of every string.
CATALOGUED = ("ar", "fr")
# Longer Accept-Language headers are read up to here: no client needs more than a few entries.
_MAX_PREFERENCES = 32

_current: ContextVar[str] = ContextVar("sijill_locale", default=DEFAULT)


def N_(message: str) -> str:  # noqa: N802  (the name gettext tools look for)
    """Mark a string for the catalogs without translating it now: translate it with
    `gettext(message)` once the language is known (a class attribute, a module constant)."""
    return message


@lru_cache(maxsize=256)
def supported(locale: str | None) -> str | None:
    """The supported language a tag names (`ar-EG` → `ar`, `FR` → `fr`), or None.
    Kept: every message a page translates asks it for the current language."""
    if not locale:
        return None
    from babel.core import negotiate_locale

    found = negotiate_locale([locale.replace("_", "-")], SUPPORTED, sep="-", aliases=None)
    return found.lower() if found else None


def _language(locale: str | None) -> str:
    return supported(locale) or DEFAULT


def preferences(accept_language: str | None) -> list[str]:
    """The language tags of an Accept-Language header, most wanted first (RFC 9110: by q,
    then in the order given); `*` and q=0 ("not this one") are dropped."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")[:_MAX_PREFERENCES]):
        tag, _sep, parameters = part.partition(";")
        tag = tag.strip().replace("_", "-")
        if not tag or tag == "*":
            continue
        weight = 1.0
        for parameter in parameters.split(";"):
            name, _sep, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if 0 < weight <= 1:  # also drops nan
            ranked.append((-weight, index, tag))
    return [tag for _weight, _index, tag in sorted(ranked)]


def negotiate(accept_language: str | None, default: str = DEFAULT) -> str:
    """The supported language an Accept-Language header asks for (`ar-EG,ar;q=0.9` → `ar`,
    `fr-CA` → `fr`), or `default` when it names none of them."""
    from babel.core import negotiate_locale

    found = negotiate_locale(preferences(accept_language), SUPPORTED, sep="-", aliases=None)
    return found.lower() if found else _language(default)


def direction(locale: str | None = None) -> Literal["rtl", "ltr"]:
    """The language's writing direction: `rtl` for Arabic, `ltr` for French and English."""
    from babel import Locale

    return (
        "rtl"
        if Locale.parse(_language(locale or current_locale())).text_direction == "rtl"
        else "ltr"
    )


def translator(locale: str | None = None) -> "NullTranslations":
    """A gettext translations object for the language, by default the current one (`gettext`,
    `ngettext`, `pgettext`, ...); English, and any language without a catalog, gets the
    source strings back."""
    return _catalog(_language(locale or current_locale()))


@cache
def _catalog(language: str) -> "NullTranslations":
    """Read at first use and kept for the life of the process."""
    from io import BytesIO

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import NullTranslations, Translations

    if language not in CATALOGUED:
        return NullTranslations()
    with catalog_path(language).open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def catalog_path(locale: str):
    """The `.po` catalog of a language (an importlib Traversable: a file, also in a wheel)."""
    return files(__name__) / "locale" / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def current_locale() -> str:
    """The language of the current request (or of `use_locale`); English by default."""
    return _current.get()


@contextmanager
def use_locale(locale: str | None) -> Iterator[str]:
    """Translate into this language within the block (what the API does for each request)."""
    token = _current.set(_language(locale))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def gettext(message: str, locale: str | None = None) -> str:
    """The message in the language (by default the current one); as written if untranslated."""
    return translator(locale).gettext(message)


def ngettext(singular: str, plural: str, n: int, locale: str | None = None) -> str:
    """The form of the message for the number n, with the language's plural rules."""
    return translator(locale).ngettext(singular, plural, n)


def _(message: str) -> str:
    """Translate into the current language now (the marker gettext tools look for)."""
    return gettext(message)
