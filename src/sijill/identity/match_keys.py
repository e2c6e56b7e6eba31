"""Keys for matching one name part (a given, father, grandfather or family name) across
spellings and scripts. Stored names are never changed; these keys are computed beside them.

Every key starts from the search fold (`names.normalise_name`: Arabic marks, tatweel, alef and
hamza forms, ى/ي, ة/ه, accents, compound عبد/Abd names) and then:

- particles: ben/bin/ibn, bint, ould, mint, ait, abu, umm and the article (al, el and its
  sun-letter forms; ال written apart or joined) are split off and returned, canonical, apart
  from the name. A part that is only a particle has no name key.
- fold key: the rest of the part, joined into one word, with Latin spelling folded (ou → u,
  ch → sh, dj → j, c → s or k, doubled letters once, Abdel/Abdul/Abd al-/Abder- → abdal,
  -eddine/ad-Din → aldin) and the variant table of `name_variants.py` applied (Mohamed,
  Mohammed, Muhammad → muhamad). Arabic keeps the search fold, minus the article.
- phonetic key: Metaphone (jellyfish) of the Latin fold key, None for Arabic. Metaphone or
  NYSIIS, measured on the Latin-Latin pairs of the test table: Metaphone finds 35 of 35 true
  pairs and lets 21 of 34 false ones collide, NYSIIS 34 and 19 (it misses Abd al-Qadir /
  Abdelkader). Recall wins: the fold key already tells the false ones apart.
- skeleton key, for Arabic against Latin: the consonants of the name in classes both scripts
  share (ب/b/p → B, ت ط/t → T, ث/th → TH, د ض ذ/d/dh → D, ش/sh/ch → SH, خ/kh → KH, غ/gh → G,
  ق ك/q/k → K, ج/j/g → J, ح ه/h → H ...), vowels and long-vowel letters dropped, a leading
  vowel or ع kept as A (Ahmad is not Hamad), a final h, ه, ح or ة dropped (Fatima/فاطمة,
  Salah/صلاح), repeated classes once.

Measured on the tables of tests/test_identity_match_keys.py (113 true pairs: 18
Arabic-Arabic, 35 Latin-Latin, 60 Arabic-Latin; 71 false pairs of different names that look
close, 18, 34 and 19), each kind of pair compared by its own key:

  pairs          key        true pairs found   false pairs colliding
  Arabic-Arabic  fold       18/18              0/18
  Latin-Latin    fold       33/35              0/34
  Latin-Latin    phonetic   35/35              21/34
  Arabic-Latin   skeleton   60/60              10/19
  Arabic-Latin   anyascii   0/60               0/19   (anyascii of the Arabic, Latin fold)
  Arabic-Latin   anyascii   20/60              8/19   (the same, then Metaphone of both)

So the skeleton, not the romaniser: anyascii writes ayn, hamza and every و/ي ("`bdllh",
"ywsf") where Latin writes vowels, and anyascii is not a dependency. A skeleton drops vowels,
so names that differ only in vowels share it (Said/Saad, Salem/Salim, Amin/Amina,
Mohamed/Mahmoud): the price of finding Arabic-Latin pairs at all. The linkage weighs it with
the other keys, sex and the rest of the record; the fold key is the one that tells such names
apart within a script. "The same name" here means the same Arabic name: the article is
optional (الحسن = حسن), a particle is not part of the name (it is compared apart), and a
masculine and a feminine form are different names.

Each key comes once per value and once per column (Polars expressions; the phonetic key, which
jellyfish computes per value, once per distinct value of a Series), and a property test holds
them equal. The rules are (regex, replacement) pairs that Python's `re` and Polars' Rust regex
read alike: no look-around or back-references; ${1} is written for Polars and read as \\g<1>.
"""

import re
from dataclasses import dataclass

import jellyfish
import polars as pl

from sijill.identity.name_variants import ARABIC_AL_WORDS, PARTICLES, VARIANTS
from sijill.identity.names import normalise_name, normalise_name_column

_AR = "\u0621-\u064a"
_CLEAN_RULES = [(f"[^a-z{_AR}]+", " "), ("^ +| +$", "")]
# General Latin spelling: French and English transcriptions of the same sounds.
_SPELLING_RULES = [
    (r"\bou([aeiy])", "w${1}"),  # Oualid, Ouafa: a leading ou before a vowel is w
    ("ou", "u"),
    ("oo", "u"),
    ("ee", "i"),
    ("ph", "f"),
    ("dj", "j"),
    ("ch", "sh"),
    ("ck", "k"),
    ("c([eiy])", "s${1}"),
    ("c", "k"),
]
# Abd + article, assimilated or not, becomes "abdal"; written in capitals first so no later
# rule of this list reads its own output ("abdalkader" must not become "abdallkader").
_ABD_RULES = [
    (r"\babd[aeiou]?l", "ABDAL"),
    *((rf"\babd[aeiou]?{c}{c}", f"ABDAL{c}") for c in "rstdzn"),
    (r"\babd[aeiou]([a-z][a-z][a-z])", "ABDAL${1}"),
    (r"\babd([bdfghjkmnqrstvwxz])", "ABDAL${1}"),
    ("ABDAL", "abdal"),
]
# An article joined and assimilated: Essaid, Errachidi, Ennaji, Ettaher, Echarif (السعيد ...).
# Three letters at least must follow (Essa and Essam are names); d and z are left out, as
# Eddine and Ezzeddine are compounds, not articles.
_ASSIMILATED_RULES = [
    *((rf"\be{c}{c}([a-z][a-z][a-z])", f"_al {c}${{1}}") for c in "rstn"),
    (r"\besh([a-z][a-z][a-z])", "_al sh${1}"),
]
_DOUBLE_RULES = [(f"{c}{c}+", c) for c in "abcdefghijklmnopqrstuvwxyz"] + [("shsh", "sh")]
# Nour ad-Din, Nour Eddine, Noureddine: one compound, as نور الدين.
_DIN_RULES = [
    (r" (al|el|ad|ed|ud) dine?\b", "aldin"),
    (r" [eua]dine?\b", "aldin"),
    (r"([a-z][a-z])[eua]dine?\b", "${1}aldin"),
]


def _compile(rules: list[tuple[str, str]]) -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(p), re.sub(r"\$\{(\d)\}", r"\\g<\1>", r)) for p, r in rules]


def _apply(value: str, rules: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, replacement in rules:
        value = pattern.sub(replacement, value)
    return value


_SPELLING = _compile(_SPELLING_RULES + _ABD_RULES + _DOUBLE_RULES + _DIN_RULES)


def _latin_spelling(word: str) -> str:
    """A table's spelling as the rules leave it, so the table can be written as found."""
    return _apply(word, _SPELLING)


def _alternation(words: list[str]) -> str:
    return "|".join(sorted(set(words), key=lambda w: (-len(w), w)))


# Each spelling as the rules above leave it, to its name's: applied to whole words.
WORD_VARIANTS = {
    _latin_spelling(variant): _latin_spelling(name)
    for name, variants in VARIANTS.items()
    for variant in variants
}
_PROTECTED = _alternation([word.removeprefix("ال") for word in ARABIC_AL_WORDS])
_PARTICLE_RULES = [
    # An article joined to the name: Elamrani, Alhassan, الحسن. After "el" anything goes
    # (El-Amrani hides an ayn); after "al" a consonant, so Ali, Alia and Alaa stay whole.
    (r"\bel([a-z][a-z][a-z])", "_al ${1}"),
    (r"\bal([bdfghjklmnqrstvxz][a-z][a-z])", "_al ${1}"),
    # ٱ (alef wasla) cannot survive the fold, so it marks the words whose ال is no article.
    (rf"\bال({_PROTECTED})\b", "\u0671ل${1}"),
    (rf"\bال([{_AR}][{_AR}])", "_al ${1}"),
    *(
        (rf"\b({_alternation([_latin_spelling(f) for f in forms])})\b", f"_{name}")
        for name, forms in PARTICLES.items()
    ),
    ("\u0671", "\u0627"),
]
SPELLING_RULES = _CLEAN_RULES + _SPELLING_RULES + _ABD_RULES + _ASSIMILATED_RULES
SPELLING_RULES += _DOUBLE_RULES + _DIN_RULES
PARTICLE_RULES = _PARTICLE_RULES
_CORE_RULES = [("_[a-z]+", ""), (" +", " "), ("^ | $", "")]
SKELETON_RULES = [
    ("^[aeiou\u0627\u0639]", "A"),
    ("^[y\u064a]", "Y"),
    ("^[w\u0648]", "W"),
    ("([aeiouy])h( |$)", "${1}${2}"),  # Fatimah, Salah, Abdallah
    ("[\u0647\u062d]( |$)", "${1}"),
    ("gh", "G"),
    ("dh", "D"),
    ("\u062b", "TH"),
    ("\u0634", "SH"),
    ("\u062e", "KH"),
    ("\u063a", "G"),
    ("[bp\u0628]", "B"),
    ("[t\u062a\u0637]", "T"),
    ("[d\u062f\u0636\u0630]", "D"),
    ("[z\u0632\u0638]", "Z"),
    ("[s\u0633\u0635]", "S"),
    ("[kqc\u0643\u0642]", "K"),
    ("x", "KS"),
    ("[jg\u062c]", "J"),
    ("[h\u062d\u0647]", "H"),
    ("[fv\u0641]", "F"),
    ("[l\u0644]", "L"),
    ("[m\u0645]", "M"),
    ("[n\u0646]", "N"),
    ("[r\u0631]", "R"),
    ("[^A-Z]+", ""),
    *((f"{c}{c}+", c) for c in "ABDGHJKLMNRSTWYZ"),
]
_SPELT = _compile(SPELLING_RULES)
_PARTICLES = _compile(PARTICLE_RULES)
_CORE = _compile(_CORE_RULES)
_SKELETON = _compile(SKELETON_RULES)


def _apply_column(expr: pl.Expr, rules: list[tuple[str, str]]) -> pl.Expr:
    for pattern, replacement in rules:
        expr = expr.str.replace_all(pattern, replacement)
    return expr


def _tokens(text: str | None) -> str:
    """The folded part, its particles marked "_bin", "_al" ..., the rest its name's words."""
    spelt = _apply(normalise_name(text), _SPELT)
    words = " ".join(WORD_VARIANTS.get(word, word) for word in spelt.split(" "))
    return _apply(words, _PARTICLES)


def _tokens_column(column: pl.Expr) -> pl.Expr:
    spelt = _apply_column(normalise_name_column(column), SPELLING_RULES)
    words = spelt.str.split(" ").list.eval(pl.element().replace(WORD_VARIANTS)).list.join(" ")
    return _apply_column(words, PARTICLE_RULES)


def _or_none(value: str) -> str | None:
    return value or None


def _or_null(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr != "").then(expr)


def _particles_of(tokens: pl.Expr) -> pl.Expr:
    return tokens.str.extract_all("_[a-z]+").list.eval(pl.element().str.slice(1))


def _core_of(tokens: pl.Expr) -> pl.Expr:
    return _apply_column(tokens, _CORE_RULES)


def _fold_of(core: pl.Expr) -> pl.Expr:
    return _or_null(core.str.replace_all(" ", "", literal=True))


def _skeleton_of(core: pl.Expr) -> pl.Expr:
    return _or_null(_apply_column(core, SKELETON_RULES))


def name_particles(text: str | None) -> list[str]:
    """The canonical particles of a name part, in order: "Ben Salah" → ["bin"]."""
    return re.findall("_([a-z]+)", _tokens(text))


def name_particles_column(column: pl.Expr) -> pl.Expr:
    return _particles_of(_tokens_column(column))


def fold_key(text: str | None) -> str | None:
    """The name without its particles, spelling folded, in one word; None if nothing is left."""
    return _or_none(_apply(_tokens(text), _CORE).replace(" ", ""))


def fold_key_column(column: pl.Expr) -> pl.Expr:
    return _fold_of(_core_of(_tokens_column(column)))


def _phonetic(fold: str | None) -> str | None:
    latin = re.sub("[^a-z]", "", fold or "")
    return jellyfish.metaphone(latin) or None if latin else None


def phonetic_key(text: str | None) -> str | None:
    """Metaphone of the Latin fold key; None for a part written only in Arabic."""
    return _phonetic(fold_key(text))


def _phonetic_of(folds: pl.Series) -> pl.Series:
    distinct = folds.drop_nulls().unique()
    codes = pl.Series([_phonetic(fold) for fold in distinct.to_list()], dtype=pl.String)
    return folds.replace_strict(distinct, codes, default=None, return_dtype=pl.String)


def phonetic_key_column(names: pl.Series) -> pl.Series:
    """`phonetic_key` for a Series: jellyfish encodes each distinct fold key once."""
    frame = names.rename("name").to_frame()
    return _phonetic_of(frame.select(fold_key_column(pl.col("name")))["name"]).rename(names.name)


def skeleton_key(text: str | None) -> str | None:
    """The consonant skeleton, the same from an Arabic and a Latin spelling of one name."""
    return _or_none(_apply(_apply(_tokens(text), _CORE), _SKELETON))


def skeleton_key_column(column: pl.Expr) -> pl.Expr:
    return _skeleton_of(_core_of(_tokens_column(column)))


@dataclass(frozen=True)
class MatchKeys:
    particles: list[str]
    fold: str | None
    phonetic: str | None
    skeleton: str | None


def match_keys(text: str | None) -> MatchKeys:
    fold = fold_key(text)
    return MatchKeys(name_particles(text), fold, _phonetic(fold), skeleton_key(text))


def match_keys_frame(names: pl.Series) -> pl.DataFrame:
    """`match_keys` for every value of `names`, one column per key. A registry holds far
    fewer distinct name parts than persons: each distinct part is folded once, and its keys
    joined back to every row that holds it."""
    frame = names.cast(pl.String).rename("name").to_frame()
    distinct = (
        frame.unique("name")
        .with_columns(_tokens_column(pl.col("name")).alias("tokens"))
        .with_columns(
            _particles_of(pl.col("tokens")).alias("particles"),
            _core_of(pl.col("tokens")).alias("core"),
        )
        .with_columns(
            _fold_of(pl.col("core")).alias("fold"), _skeleton_of(pl.col("core")).alias("skeleton")
        )
    )
    distinct = distinct.with_columns(_phonetic_of(distinct["fold"]).alias("phonetic"))
    keys = frame.join(distinct, on="name", how="left", maintain_order="left", nulls_equal=True)
    return keys.select("particles", "fold", "phonetic", "skeleton")
