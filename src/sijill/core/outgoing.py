"""Text leaving Sijill for a terminal or a spreadsheet, made unable to act there.

Names and free text are checked when they come in (`identity.text`), but records stored before
that rule, agencies' cells quoted in a rejects file and users' own input can still hold
characters that act rather than show:

- a terminal runs control characters (ESC starts colours, cursor moves, hyperlinks, title
  changes; BEL, CR and backspace rewrite a line) and a bidirectional override reorders what
  follows it: `for_terminal` writes each such character visibly, as `\\x1b` or `\\u202e`;
- a spreadsheet runs a CSV cell that starts with `=`, `+`, `-`, `@`, a tab or a CR as a formula
  (CSV injection): `spreadsheet_cell` neutralises it with a leading `'`, as OWASP recommends.
  A plain number (`-12.5`, `+962791234567`) is left as it is: it is no formula.
"""

import re
import unicodedata

# Control, format (bidi, zero-width), line and paragraph separators, surrogates, private use
# and unassigned code points. The zero-width non-joiner is left: Persian and Urdu names need it
# (`identity.text` allows it only between Arabic letters), and it moves nothing.
_ACTING = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"))
_KEPT = frozenset("\u200c")
_FORMULA_START = "=+-@\t\r"
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def _visible(char: str) -> str:
    code = ord(char)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


def _acts(char: str) -> bool:
    return char not in _KEPT and unicodedata.category(char) in _ACTING


def for_terminal(text: str, *, newlines: bool = False) -> str:
    """`text` with every character that would act on a terminal written visibly; line breaks
    kept when `newlines` (a message of several lines)."""
    if text.isprintable():  # the common case, at C speed
        return text
    return "".join(
        _visible(char) if _acts(char) and not (newlines and char == "\n") else char for char in text
    )


def json_for_terminal(dumped: str) -> str:
    """A JSON document with every such character as a `\\u` escape: the same data once parsed,
    nothing that acts on the terminal it is printed on."""
    if dumped.isprintable():
        return dumped
    out = []
    for char in dumped:
        if _acts(char):
            # As UTF-16 code units, which is how JSON escapes a character beyond the BMP.
            units = char.encode("utf-16-be")
            out += [f"\\u{int.from_bytes(units[i : i + 2]):04x}" for i in range(0, len(units), 2)]
        else:
            out.append(char)
    return "".join(out)


def spreadsheet_cell(text: str) -> str:
    """A CSV or XLSX cell a spreadsheet shows and never runs."""
    if text and text[0] in _FORMULA_START and not _NUMBER_RE.fullmatch(text):
        return "'" + text
    return text
