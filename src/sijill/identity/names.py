"""Normalised forms of names, for search and matching. Names are stored as written.

The rules are written once, as (regex, replacement) pairs that both Python's `re` and Polars'
Rust regex read the same way, and applied per name on the transactional path and per column on
the bulk path.
"""

import re
import unicodedata

import polars as pl

# Arabic orthographic variation that carries no meaning for identity: short-vowel marks and
# tatweel are dropped; hamza-carrying alefs, alef wasla and madda fold into bare alef; final
# ta marbuta and alef maqsura fold into ha and ya, as clerks write them interchangeably.
ARABIC_RULES: list[tuple[str, str]] = [
    ("[\u064b-\u065f\u0670\u0640]", ""),
    ("[\u0622\u0623\u0625\u0671]", "\u0627"),
    ("\u0629", "\u0647"),
    ("\u0649", "\u064a"),
    ("\u0624", "\u0648"),
    ("\u0626", "\u064a"),
]
LATIN_RULES: list[tuple[str, str]] = [
    ("[\u0300-\u036f]", ""),  # accents, once NFKD has split them off their letters
    ("['`\u2019\u02bf\u02be]", ""),  # ayn and hamza apostrophes: Abd'allah = Abdallah
    ("[^0-9a-z\u0600-\u06ff]+", " "),
    ("^ +| +$", ""),
]
# Compound names written in one word or two: "عبد الرحمن" = "عبدالرحمن", "Abdel Rahman" =
# "Abd el-Rahman" = "Abdelrahman" (an article after "abd" joins too). Run on the folded form
# (single spaces, none at the ends), so "(^| )" is a word's start. Replacements are written
# for Polars ($1); Python's `re` reads them as \g<1>.
COMPOUND_RULES: list[tuple[str, str]] = [
    ("(^| )\u0639\u0628\u062f ", "${1}\u0639\u0628\u062f"),
    ("(^| )abd ?(el|al|ul|ol|oul)? ", "${1}abd${2}"),
]
RULES = ARABIC_RULES + LATIN_RULES + COMPOUND_RULES
_COMPILED = [(re.compile(p), re.sub(r"\$\{(\d)\}", r"\\g<\1>", r)) for p, r in RULES]


def normalise_name(text: str | None) -> str:
    if not text:
        return ""
    value = unicodedata.normalize("NFKD", text).lower()
    for pattern, replacement in _COMPILED:
        value = pattern.sub(replacement, value)
    return value


def normalise_name_column(column: pl.Expr) -> pl.Expr:
    expr = column.fill_null("").str.normalize("NFKD").str.to_lowercase()
    for pattern, replacement in RULES:
        expr = expr.str.replace_all(pattern, replacement)
    return expr


NAME_PARTS = (
    "given_name_ar",
    "father_name_ar",
    "grandfather_name_ar",
    "family_name_ar",
    "given_name_lat",
    "father_name_lat",
    "grandfather_name_lat",
    "family_name_lat",
)


def search_name(parts: dict[str, str | None]) -> str:
    """All name parts, both scripts, normalised: what name search looks in."""
    words = (normalise_name(parts.get(part)) for part in NAME_PARTS)
    return " ".join(word for word in words if word)


def search_name_column(frame: pl.DataFrame) -> pl.Expr:
    """`search_name` for every row of `frame`. A registry has far fewer distinct names than
    persons, so each distinct name part is normalised once and looked up per row."""
    distinct = (
        pl.concat([frame.select(pl.col(part).alias("name")) for part in NAME_PARTS])
        .drop_nulls()
        .unique()
    )
    # A normalised form has no outer or doubled spaces; an empty one is left out, as
    # `search_name` leaves out empty words.
    forms = distinct.select("name", normalise_name_column(pl.col("name")).alias("form")).filter(
        pl.col("form") != ""
    )
    words = [
        pl.col(part).replace_strict(forms["name"], forms["form"], default=None)
        for part in NAME_PARTS
    ]
    return pl.concat_str(words, separator=" ", ignore_nulls=True)
