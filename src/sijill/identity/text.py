"""Which characters free text may hold: one rule per kind of text, so a record cannot display
as something else in a page, a terminal or a spreadsheet.

Bidirectional overrides (U+202E and its kin) reorder what is shown, zero-width characters hide
differences between two names, and control characters (ESC, BEL, CR, LF) drive terminals. A
rule is therefore a list of what is allowed, never of what is refused:

- `NAME` (name parts): letters and combining marks of the Arabic and Latin scripts, the space
  (U+0020), the hyphen-minus and apostrophes (`'`, U+2019, U+02BC, U+02BE, U+02BF).
- `TEXT` (other free text: an address, an enumerator's code): all of `NAME`, digits (ASCII,
  Arabic-Indic and Eastern Arabic-Indic), and the punctuation and symbols of Basic Latin,
  Latin-1, General Punctuation (U+2010..U+2027) and the Arabic blocks.

In both, the zero-width non-joiner (U+200C), which Persian and Urdu spellings need, is allowed
only between Arabic letters (a mark may come between the first letter and it). Values are
NFC-normalised first and stored so. Letters and marks are taken by their Unicode category from
the blocks Arabic, Arabic Supplement, Arabic Extended-A, Arabic Presentation Forms-A and -B,
Basic Latin, Latin-1 Supplement, Latin Extended-A, -B and Additional, and Combining
Diacritical Marks; the sets are written out as explicit ranges when this module loads, so
Python's `re` (per value) and Polars' Rust regex (per column) read the very same character
classes, and a property test holds the two equal.
"""

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

import polars as pl

ZWNJ = "\u200c"
_ARABIC_BLOCKS = (
    (0x0600, 0x06FF),
    (0x0750, 0x077F),
    (0x08A0, 0x08FF),
    (0xFB50, 0xFDFF),
    (0xFE70, 0xFEFF),
)
_LATIN_BLOCKS = ((0x0000, 0x007F), (0x0080, 0x00FF), (0x0100, 0x024F), (0x1E00, 0x1EFF))
_COMBINING_MARKS = ((0x0300, 0x036F),)
_GENERAL_PUNCTUATION = ((0x2010, 0x2027),)
NAME_PUNCTUATION = " -'\u2019\u02bc\u02be\u02bf"
DIGITS = "0123456789\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"
DIGITS += "".join(chr(c) for c in range(0x06F0, 0x06FA))


def _chars(blocks, categories: str) -> set[str]:
    """The characters of `blocks` whose general category starts with one of `categories`."""
    return {
        chr(code)
        for low, high in blocks
        for code in range(low, high + 1)
        if unicodedata.category(chr(code))[0] in categories
    }


def _class(chars: set[str]) -> str:
    """A regex character class body of `chars` as ranges of \\uXXXX escapes, which `re` and
    Rust's regex read alike (and which need no escaping of `]`, `-` or `^`)."""
    codes, parts, index = sorted(ord(char) for char in chars), [], 0
    while index < len(codes):
        end = index
        while end + 1 < len(codes) and codes[end + 1] == codes[end] + 1:
            end += 1
        low, high = codes[index], codes[end]
        parts.append(f"\\u{low:04X}" if low == high else f"\\u{low:04X}-\\u{high:04X}")
        index = end + 1
    return "".join(parts)


_ARABIC_LETTERS = _chars(_ARABIC_BLOCKS, "L")
_ARABIC_LETTERS_AND_MARKS = _chars(_ARABIC_BLOCKS, "LM")
_NAME_CHARS = _chars(_ARABIC_BLOCKS + _LATIN_BLOCKS + _COMBINING_MARKS, "LM") | set(
    NAME_PUNCTUATION
)
_TEXT_CHARS = (
    _NAME_CHARS
    | set(DIGITS)
    | _chars(_ARABIC_BLOCKS + _GENERAL_PUNCTUATION, "PS")
    | _chars(((0x0021, 0x007E), (0x00A1, 0x00BF)), "PS")
)


class TextKind(StrEnum):
    """The kind of text a catalogue field holds (`registry.fields.Field.text_kind`)."""

    NAME = "name"
    TEXT = "text"


@dataclass(frozen=True)
class _Rule:
    allowed: str  # what the clerk is told is allowed
    pattern: str  # matches the first character the rule refuses
    compiled: re.Pattern


def _rule(allowed: str, chars: set[str]) -> _Rule:
    before, after = _class(_ARABIC_LETTERS_AND_MARKS), _class(_ARABIC_LETTERS)
    # A ZWNJ with no Arabic letter (or mark) before it, or no Arabic letter after it.
    misplaced = f"(?:^|[^{before}])\\u200C|\\u200C(?:[^{after}]|$)"
    pattern = f"[^{_class(chars)}\\u200C]|{misplaced}"
    return _Rule(allowed, pattern, re.compile(pattern))


RULES = {
    TextKind.NAME: _rule(
        "letters of Arabic or Latin script, spaces, hyphens and apostrophes", _NAME_CHARS
    ),
    TextKind.TEXT: _rule(
        "letters and digits of Arabic or Latin script, spaces, punctuation and symbols",
        _TEXT_CHARS,
    ),
}
# The import's reason code for a value the rule refuses (its reject line never shows the value).
DISALLOWED = "disallowed_character"


def clean_text(kind: TextKind, text: str) -> str:
    """`text` NFC-normalised, or ValueError naming the first character `kind` does not allow
    (by its code point and Unicode name: the message never repeats the value)."""
    value = unicodedata.normalize("NFC", text)
    found = RULES[kind].compiled.search(value)
    if found is None:
        return value
    rule = RULES[kind]
    if ZWNJ in found.group():
        raise ValueError(
            "holds a zero-width non-joiner (U+200C) that is not between two Arabic letters"
        )
    char = found.group()
    category = unicodedata.category(char)
    name = unicodedata.name(char, "") or ("a control character" if category == "Cc" else category)
    raise ValueError(
        f"holds U+{ord(char):04X} ({name}), which is not allowed here (allowed: {rule.allowed})"
    )


def text_problem(kind: TextKind, text: str) -> str | None:
    """What is wrong with `text` under the rule of `kind`, or None."""
    try:
        clean_text(kind, text)
    except ValueError as error:
        return str(error)
    return None


def nfc_column(column: pl.Expr) -> pl.Expr:
    return column.str.normalize("NFC")


def disallowed_column(kind: TextKind, column: pl.Expr) -> pl.Expr:
    """True where `text_problem` finds something wrong (null stays null), for a whole column."""
    return nfc_column(column).str.contains(RULES[kind].pattern)


def checked_text_column(frame: pl.DataFrame, name: str, kind: TextKind) -> tuple[pl.Expr, pl.Expr]:
    """(`clean_text` of each value, whether the rule refuses it) for `frame[name]`: the bulk
    path. A registry has far fewer distinct names than persons, and normalising is the costly
    part (about 1 s per 5 million values), so each distinct value is worked out once and the
    column is rewritten only if some value was not NFC already."""
    value = pl.col(name)
    forms = frame.select(value.drop_nulls().unique()).with_columns(
        nfc_column(value).alias("nfc"), disallowed_column(kind, value).alias("bad")
    )
    refused = forms.filter("bad")[name]
    # (null stays null, as `disallowed_column` has it)
    bad = (
        value.is_in(refused.implode())
        if refused.len()
        else pl.when(value.is_not_null()).then(False)
    )
    changed = forms.filter(value != pl.col("nfc"))
    written = value.replace(changed[name], changed["nfc"]) if changed.height else value
    return written, bad
