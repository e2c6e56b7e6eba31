"""National ID numbers: validated with python-stdnum where it knows the country's scheme.

The scheme is a setting (`SIJILL_NATIONAL_ID_SCHEME`): the name of a python-stdnum module
(e.g. `tr.tckimlik`, `il.idnr`) or `digits:N` for a country whose scheme stdnum does not know
(e.g. Jordan's 10-digit national number: `digits:10`). Only `national_id` numbers are checked
against it; refugees' UNHCR case numbers, passports and residence permits have formats of
their own, checked loosely because they are issued by many authorities.

The bulk path validates millions of numbers at once; per-value stdnum calls would cost more
than the import itself, so schemes used in bulk have a numpy version here that tests hold
equal to stdnum's.
"""

import importlib
import re
from collections.abc import Callable

import numpy as np
import polars as pl
from stdnum.exceptions import ValidationError

ID_TYPES = ("national_id", "unhcr", "passport", "residence_permit")
_OTHER_FORMATS = {
    "unhcr": re.compile(r"^[0-9]{3}-[0-9]{2}[A-Z][0-9]{5}$"),
    "passport": re.compile(r"^[A-Z0-9]{6,12}$"),
    "residence_permit": re.compile(r"^[A-Z0-9-]{6,20}$"),
}


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
        return re.sub(r"[\s-]", "", number)

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


def other_id_problem(id_type: str, number: str) -> str | None:
    pattern = _OTHER_FORMATS.get(id_type)
    if pattern is None:
        return f"'{id_type}' is not an identity document type ({', '.join(ID_TYPES)})"
    if not pattern.match(number):
        return f"{id_type.replace('_', ' ')} number '{number}' is not in the expected format"
    return None


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
