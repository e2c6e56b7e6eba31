"""National ID numbers: validated with python-stdnum where it knows the country's scheme.

The scheme is a setting (`SIJILL_NATIONAL_ID_SCHEME`): the name of a python-stdnum module
(e.g. `tr.tckimlik`, `il.idnr`) or `digits:N` for a country whose scheme stdnum does not know
(e.g. Jordan's 10-digit national number: `digits:10`). Only `national_id` numbers are checked
against it; refugees' UNHCR case numbers, passports and residence permits have formats of
their own, checked loosely because they are issued by many authorities.

Each rule is written once for both paths: `normalise_number` and `number_problem` read and
check one number as typed (the API), `normalise_number_column` and `valid_numbers` a whole
column (the bulk import); a property test holds them equal. The bulk path validates millions
of numbers at once; per-value stdnum calls would cost more than the import itself, so schemes
used in bulk have a numpy version here that tests hold equal to stdnum's (other schemes are
called once per distinct number).
"""

import importlib
import re
from collections.abc import Callable

import numpy as np
import polars as pl
from stdnum import util as stdnum_util
from stdnum.exceptions import ValidationError

from sijill.identity.digits import PLAIN, SPACE, WITHOUT_SPACES, CharacterMap

ID_TYPES = ("national_id", "unhcr", "passport", "residence_permit")
# The formats of the other documents, over whole normalised numbers (upper case, no spaces).
OTHER_FORMATS = {
    "unhcr": r"[0-9]{3}-[0-9]{2}[A-Z][0-9]{5}",
    "passport": r"[A-Z0-9]{6,12}",
    "residence_permit": r"[A-Z0-9-]{6,20}",
}
_OTHER_FORMATS = {kind: re.compile(pattern) for kind, pattern in OTHER_FORMATS.items()}
_SPACE_OR_DASH = SPACE[:-1] + "-]"
# What a document number is read through first: local digits, no marks, no spaces at all
# (some stdnum schemes keep inner spaces; no document number has one).
_TYPED = PLAIN | WITHOUT_SPACES
# What python-stdnum's `clean` reads as ASCII (fullwidth digits, Unicode dashes...), for the
# vectorised `compact` of the schemes below; a property test holds it equal to stdnum's.
_LOOKALIKES = CharacterMap(
    {char: ascii for char, ascii in getattr(stdnum_util, "_char_map", {}).items() if char != ascii}
)


class Scheme:
    def __init__(self, name: str):
        self.name = name
        self._digits: int | None = None
        self._module = None
        if name.startswith("digits:"):
            self._digits = int(name.removeprefix("digits:"))
        else:
            try:
                self._module = importlib.import_module(f"stdnum.{name}")
            except ImportError:
                raise ValueError(
                    f"Unknown national ID scheme '{name}': use a python-stdnum module name "
                    "such as 'tr.tckimlik', or 'digits:N'"
                ) from None

    def compact(self, number: str) -> str:
        if self._module is not None:
            return self._module.compact(number)
        return re.sub(_SPACE_OR_DASH, "", number)

    def compact_column(self, numbers: pl.Expr) -> pl.Expr:
        """`compact` of every row: column-wise for `digits:N` and the schemes vectorised below,
        else stdnum's own `compact` once per distinct number."""
        if self._module is None:
            return numbers.str.replace_all(_SPACE_OR_DASH, "")
        if self.name in _VECTORISED:
            return numbers.map_batches(_clean_lookalikes, return_dtype=pl.String)
        return numbers.map_batches(self._compact_distinct, return_dtype=pl.String)

    def _compact_distinct(self, numbers: pl.Series) -> pl.Series:
        distinct = numbers.drop_nulls().unique()
        compacted = [self._module.compact(number) for number in distinct.to_list()]
        return numbers.replace_strict(distinct, compacted, default=None, return_dtype=pl.String)

    def problem(self, number: str) -> str | None:
        """None if valid, else what a clerk should be told."""
        if self._module is not None:
            try:
                self._module.validate(number)
            except ValidationError as error:
                return f"national ID '{number}' is not valid: {error}"
            return None
        compact = self.compact(number)
        if not (compact.isascii() and compact.isdigit() and len(compact) == self._digits):
            return f"national ID '{number}' is not valid: it must have {self._digits} digits"
        return None

    def valid_column(self, numbers: pl.Series) -> pl.Series:
        """Vectorised validity of already-compacted numbers (nulls count as valid)."""
        vectorised = _VECTORISED.get(self.name)
        if self._digits is not None:
            vectorised = _digits_valid(self._digits)
        if vectorised is None:
            return numbers.map_elements(
                lambda n: self.problem(n) is None, return_dtype=pl.Boolean
            ).fill_null(True)
        present = numbers.is_not_null().to_numpy()
        result = np.ones(len(numbers), dtype=bool)
        result[present] = vectorised(numbers.filter(numbers.is_not_null()))
        return pl.Series(numbers.name, result)


def _clean_lookalikes(numbers: pl.Series) -> pl.Series:
    """stdnum's `clean(number).strip()`, the `compact` of the schemes vectorised here, for a
    column: only text beyond ASCII has look-alikes to read."""
    beyond_ascii = numbers.str.len_bytes() != numbers.str.len_chars()
    if not beyond_ascii.any():
        return numbers
    cleaned = numbers.to_frame("n").select(_LOOKALIKES.column(pl.col("n")).str.strip_chars(" "))
    return cleaned["n"].rename(numbers.name)


def other_id_problem(id_type: str, number: str) -> str | None:
    pattern = _OTHER_FORMATS.get(id_type)
    if pattern is None:
        return f"'{id_type}' is not an identity document type ({', '.join(ID_TYPES)})"
    if not pattern.fullmatch(number):
        return f"{id_type.replace('_', ' ')} number '{number}' is not in the expected format"
    return None


# --- one rule for both paths: a number per value, a column of numbers per batch --------------


def normalise_number(scheme: Scheme, id_type: str, number: str) -> str:
    """The stored form of a document number: direction marks, spaces and local digits read
    away; then compact for the national scheme, upper case for the other documents."""
    value = _TYPED.value(number)
    if id_type == "national_id":
        return scheme.compact(value)
    return value.upper()


def normalise_number_column(scheme: Scheme, id_type: pl.Expr, number: pl.Expr) -> pl.Expr:
    """`normalise_number` of every row (null where the number is null)."""
    value = _TYPED.column(number)
    national = scheme.compact_column(value)
    return pl.when(id_type == "national_id").then(national).otherwise(value.str.to_uppercase())


def number_problem(scheme: Scheme, id_type: str, number: str) -> str | None:
    """None if the number, as typed, is valid for its document type, else what to tell the
    clerk."""
    value = normalise_number(scheme, id_type, number)
    if not value:
        return "the document number is empty"
    if id_type == "national_id":
        return scheme.problem(value)
    return other_id_problem(id_type, value)


def valid_numbers(scheme: Scheme, id_types: pl.Series, numbers: pl.Series) -> pl.Series:
    """Per row, whether an already normalised number is valid for its document type (as
    `number_problem` decides): True where there is no number, False for an unknown type."""
    present = numbers.is_not_null().to_numpy()
    valid = ~present
    for id_type in ID_TYPES:
        rows = ((id_types == id_type).fill_null(False).to_numpy()) & present
        if not rows.any():
            continue
        mine = numbers.filter(pl.Series(rows))
        if id_type == "national_id":
            valid[rows] = scheme.valid_column(mine).to_numpy()
        else:
            shaped = mine.str.contains(f"^(?:{OTHER_FORMATS[id_type]})$")
            valid[rows] = shaped.to_numpy()
    return pl.Series(numbers.name, valid)


def _digit_matrix(numbers: pl.Series, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of digits for numbers that are exactly `width` ASCII digits, and which those are."""
    shaped = numbers.str.contains(f"^[0-9]{{{width}}}$").fill_null(False).to_numpy()
    encoded = numbers.filter(pl.Series(shaped)).cast(pl.Binary).to_list()
    digits = np.frombuffer(b"".join(encoded), dtype=np.uint8).reshape(-1, width) - ord("0")
    return digits.astype(np.int64), shaped


def _tckimlik_valid(numbers: pl.Series) -> np.ndarray:
    d, shaped = _digit_matrix(numbers, 11)
    ok = d[:, 0] != 0
    ok &= (d[:, [0, 2, 4, 6, 8]].sum(1) * 7 - d[:, [1, 3, 5, 7]].sum(1)) % 10 == d[:, 9]
    ok &= d[:, :10].sum(1) % 10 == d[:, 10]
    result = np.zeros(len(numbers), dtype=bool)
    result[shaped] = ok
    return result


def _digits_valid(width: int) -> Callable[[pl.Series], np.ndarray]:
    def valid(numbers: pl.Series) -> np.ndarray:
        return numbers.str.contains(f"^[0-9]{{{width}}}$").fill_null(False).to_numpy()

    return valid


_VECTORISED: dict[str, Callable[[pl.Series], np.ndarray]] = {"tr.tckimlik": _tckimlik_valid}
