"""Pages rendered in the request's language: Jinja2 templates whose strings go through the
gettext catalogs (`_("...")` in a template is extracted like `_()` in the code: babel.cfg),
with numbers, dates and amounts written per locale by `core.i18n.formats`.

Arabic pages use the digits of the `arabic_digits` setting (`latn` in the Maghreb, `arab`
across much of the Mashreq); French and English always use Latin digits.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, nodes, pass_context, select_autoescape
from jinja2.visitor import NodeTransformer
from markupsafe import Markup, escape

from sijill.core.errors import SijillError
from sijill.core.i18n import SUPPORTED, current_locale, direction, gettext, ngettext, supported
from sijill.core.i18n.formats import (
    format_amount,
    format_date,
    format_datetime,
    format_number,
    format_percent,
)
from sijill.web.session import LANGUAGE_COOKIE, csrf_token

LANGUAGE_NAMES = {"ar": "العربية", "fr": "Français", "en": "English"}


class _Translated(NodeTransformer):
    """`_("...")` with a literal message, and keywords or none, as the language's translation
    looked up when the template is compiled, with newstyle gettext's meaning: the message marked
    safe when autoescaping, then always formatted with `%` (which escapes the values). At run
    time each call went through three context calls and a catalog lookup: a tenth of a
    household page's server time."""

    def __init__(self, language: str) -> None:
        self.language = language

    def visit_Call(self, node: nodes.Call) -> nodes.Node:
        node = self.generic_visit(node)
        message = node.args[0] if len(node.args) == 1 else None
        if not (
            isinstance(node.node, nodes.Name)
            and node.node.name in ("_", "gettext")
            and isinstance(message, nodes.Const)
            and isinstance(message.value, str)
            and node.dyn_args is None
            and node.dyn_kwargs is None
        ):
            return node
        text = nodes.MarkSafeIfAutoescape(nodes.Const(gettext(message.value, self.language)))
        values = nodes.Dict([nodes.Pair(nodes.Const(k.key), k.value) for k in node.kwargs])
        return nodes.Mod(text, values).set_lineno(node.lineno)


_DICT_ATTRIBUTES = frozenset(dir(dict))


class _PageTemplates(Environment):
    """The pages' templates in one language, compiled with their literal messages translated
    (`_Translated`); a message given as a variable is translated as the page renders."""

    def __init__(self, language: str) -> None:
        super().__init__(
            loader=PackageLoader("sijill.web", "templates"),
            autoescape=select_autoescape(default=True),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
            # The templates come with the package and change only with it: not a look at each
            # template file's time (two per page, a page and the one it extends) per render.
            auto_reload=False,
        )
        self.language = language
        self.install_gettext_callables(
            lambda message: gettext(message, language),
            lambda singular, plural, n: ngettext(singular, plural, n, language),
            newstyle=True,
        )

    def getattr(self, obj: Any, attribute: str) -> Any:
        """`record.name` on a plain dict: its item, read first. Jinja2 tries the attribute
        first and takes the item on the AttributeError it raised: about a sixth of the
        template's time on the household page, whose records are dicts. The same answer: a
        plain dict's only attributes are its class's, and those still win."""
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    # Jinja2 has no public hook between parsing a template and compiling it.
    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = _Translated(self.language).visit(super()._parse(source, name, filename))
        tree.set_environment(self)
        return tree


def page_language(request: Request) -> str:
    """The language cookie's, else the one the request asked for (`?lang=`, Accept-Language:
    already current, set by the API's middleware)."""
    return supported(request.cookies.get(LANGUAGE_COOKIE)) or current_locale()


def _digits(context: Any) -> str:
    return context.get("digits", "latn")


def _isolated(text: str) -> Markup:
    # An amount or an ID keeps its own direction inside a sentence of the other script.
    return Markup(f"<bdi>{escape(text)}</bdi>")


@pass_context
def number(context: Any, value: int | Decimal | None, format: str | None = None) -> Markup | str:
    """A number; `format` is a CLDR pattern (`#,##0.0%` a share as a percentage)."""
    if value is None:
        return ""
    return _isolated(format_number(value, numbering_system=_digits(context), format=format))


@pass_context
def amount(context: Any, value: int | Decimal | None, currency: str | None) -> Markup | str:
    if value is None:
        return ""
    if not currency:
        return number(context, value)
    return _isolated(format_amount(value, currency, numbering_system=_digits(context)))


@pass_context
def minor(context: Any, value: int | None, minor_units: int, currency: str) -> Markup | str:
    """An amount stored in integer minor units (never through a float)."""
    if value is None:
        return ""
    return amount(context, Decimal(value).scaleb(-minor_units), currency)


@pass_context
def day(context: Any, value: date | str | None) -> Markup | str:
    if not value:
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        value = value.date()
    return _isolated(format_date(value, numbering_system=_digits(context)))


@pass_context
def moment(context: Any, value: datetime | str | None) -> Markup | str:
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return _isolated(format_datetime(value, format="short", numbering_system=_digits(context)))


@pass_context
def percent(context: Any, value: Decimal | None) -> Markup | str:
    """A share (0 to 1) as a percentage."""
    if value is None:
        return ""
    return _isolated(format_percent(value, numbering_system=_digits(context)))


def service_detail(error: SijillError | str) -> Markup | str:
    """What a service said when it refused, for a page. Services word their details in
    English (they are the API's problem `detail`, naming records and values); on a page in
    another language the detail is said to be English and marked so (`lang`, for screen
    readers; `dir`, so its IDs and numbers keep their order in a right-to-left page)."""
    text = error if isinstance(error, str) else error.detail
    if current_locale() == "en":
        return text
    return Markup('{} <span lang="en" dir="ltr">{}</span>').format(gettext("In English:"), text)


def ident(value: Any) -> Markup:
    return _isolated(str(value))


TEMPLATES = {language: _PageTemplates(language) for language in SUPPORTED}
for _templates in TEMPLATES.values():
    _templates.filters.update(
        number=number,
        amount=amount,
        minor=minor,
        day=day,
        moment=moment,
        ident=ident,
        bdi=ident,
        in_english=service_detail,
        percent=percent,
    )


def page(
    request: Request, template: str, status: int = 200, here: str | None = None, **values: Any
) -> HTMLResponse:
    """A template rendered in the current language, with what every page shows: the user, the
    language links (back to `here`, by default this page), the sign-out form and its CSRF
    token."""
    language = current_locale()
    settings = request.app.state.settings
    if here is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    html = (
        TEMPLATES[language]
        .get_template(template)
        .render(
            lang=language,
            dir=direction(language),
            digits=settings.arabic_digits if language == "ar" else "latn",
            languages=[(code, LANGUAGE_NAMES[code]) for code in SUPPORTED],
            here=quote(here, safe=""),
            csrf=csrf_token(request),
            user=getattr(request.state, "principal", None),
            **values,
        )
    )
    return HTMLResponse(html, status_code=status)
