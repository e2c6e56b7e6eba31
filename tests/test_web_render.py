"""The pages' literal messages are translated once, when a template is compiled, and say
exactly what Jinja2's own gettext says when it translates them as the page renders."""

import pytest
from jinja2 import Environment

from sijill.core.i18n import SUPPORTED, gettext, ngettext
from sijill.web.render import TEMPLATES

SOURCE = (
    '<p title="{{ _("Households") }}">{{ _("Households") }}</p>'
    '{{ _("Version %(version)s, recorded %(when)s", version=version, when=when) }}'
    '|{{ _("100%% of <b>it</b>") }}|{{ _(label) }}'
    '|{{ ngettext("%(num)d household", "%(num)d households", count) }}'
)
VALUES = {"version": "<3>", "when": "Tom & Jerry's", "label": "Households", "count": 2}


def _at_render(language: str) -> Environment:
    reference = Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    reference.install_gettext_callables(
        lambda message: gettext(message, language),
        lambda singular, plural, n: ngettext(singular, plural, n, language),
        newstyle=True,
    )
    return reference


@pytest.mark.parametrize("language", SUPPORTED)
def test_messages_translated_when_compiled_read_as_when_rendered(language):
    expected = _at_render(language).from_string(SOURCE).render(VALUES)
    assert TEMPLATES[language].from_string(SOURCE).render(VALUES) == expected
    assert gettext("Households", language) in expected
    assert "&lt;3&gt;" in expected and "Tom &amp; Jerry&#39;s" in expected  # values escaped
    assert "100% of <b>it</b>" in expected  # the message itself is trusted, %% is one %


@pytest.mark.parametrize("language", SUPPORTED)
def test_literal_messages_are_looked_up_once_when_compiled(language):
    code = TEMPLATES[language].compile('{{ _("Households") }}{{ _("x %(n)s", n=n) }}', raw=True)
    assert "resolve('_')" not in code
    assert gettext("Households", language) in code
    variable = TEMPLATES[language].compile("{{ _(label) }}", raw=True)
    assert "resolve('_')" in variable  # a message known only at render time


class _Record(dict):
    title = "attribute"


def test_a_dicts_items_read_with_a_dot_are_what_jinja2_reads():
    source = (
        "{{ r.name }}|{{ r.missing is undefined }}|{{ r.items() | list | length }}"
        "|{{ r.get('name') }}|{{ s.title }}|{{ n.real }}"
    )
    values = {
        "r": {"name": "Amal", "items": "shadowed by the method", "get": "also"},
        "s": _Record(title="item"),  # a subclass: Jinja2's own order, the attribute first
        "n": 5,
    }
    expected = Environment().from_string(source).render(values)
    assert expected == "Amal|True|3|Amal|attribute|5"
    for language in SUPPORTED:
        assert TEMPLATES[language].from_string(source).render(values) == expected
