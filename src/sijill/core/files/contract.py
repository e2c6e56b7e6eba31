"""The error contract of file reading: one exception for a file that cannot be read at all,
and reject records (line, reason code, translated reason) for the rows that cannot be read."""

from enum import StrEnum
from pathlib import Path

import polars as pl

from sijill.core.errors import InvalidInput
from sijill.core.i18n import N_, gettext

ROW = "_row"
# XLSX's own limit for a cell; no field of the registry comes near it, so a longer field is
# a broken line (a quote left open) or an attack, never a value.
MAX_FIELD_CHARS = 32_767
REJECTS = {"row": pl.Int64, "reason": pl.String, "message": pl.String}


class UnreadableFile(InvalidInput):
    """A file that cannot be read at all. The message names the file and the problem; it never
    quotes the file (a parser's own message often does, so none is passed on)."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path.name}: {problem}")
        self.problem = problem


class Reason(StrEnum):
    FIELD_COUNT = "field_count"
    OPEN_QUOTE = "open_quote"
    NOT_UTF8 = "not_utf8"
    NUL = "nul"
    TOO_LONG = "field_too_long"


MESSAGES = {
    Reason.FIELD_COUNT: N_("the line has {found} fields where the header has {expected}"),
    Reason.OPEN_QUOTE: N_("a quote opened on this line is not closed where it should be"),
    Reason.NOT_UTF8: N_("the line is not UTF-8 text"),
    Reason.NUL: N_("a field holds a NUL character"),
    Reason.TOO_LONG: N_("a field is longer than {limit} characters"),
}


def message(reason: Reason, **values: int) -> str:
    return gettext(MESSAGES[reason]).format(**values)


def rejects_frame(rows: list[int], reasons: list[Reason], messages: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"row": rows, "reason": [str(r) for r in reasons], "message": messages}, schema=REJECTS
    )


def no_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECTS)


def check_openable(path: Path, allow_empty: bool = False) -> None:
    """Fail with one line for a file that is not there, not a file, or (unless allowed) empty."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UnreadableFile(path, "no such file") from None
    except OSError as error:
        raise UnreadableFile(path, f"cannot be opened ({error.strerror})") from None
    if path.is_dir():
        raise UnreadableFile(path, "is a folder, not a file")
    if size == 0 and not allow_empty:
        raise UnreadableFile(path, "the file is empty")
