"""Structured documents (YAML, JSON) under the same contract as tables: a file that cannot be
read raises `UnreadableFile` naming the file and the problem, with the line where the parser
stopped but never the parser's own message, which quotes the text around it."""

import json
from pathlib import Path
from typing import Any

import yaml

from sijill.core.files.contract import UnreadableFile, check_openable

# Mappings, parameters and area shapes are small; a bigger file is a wrong file.
MAX_DOCUMENT_BYTES = 64 << 20


def read_text(path: Path) -> str:
    check_openable(path, allow_empty=True)
    if path.stat().st_size > MAX_DOCUMENT_BYTES:
        raise UnreadableFile(path, f"is larger than {MAX_DOCUMENT_BYTES >> 20} MB")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UnreadableFile(path, f"cannot be read ({error.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableFile(path, "is not UTF-8 text") from None
    if "\x00" in text:
        raise UnreadableFile(path, "is not a text file (it holds NUL characters)")
    return text


def read_yaml(path: Path) -> Any:
    """The document, or None for an empty one (YAML's own answer)."""
    text = read_text(path)
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UnreadableFile(path, f"is not valid YAML{where}") from None
    except yaml.YAMLError:
        raise UnreadableFile(path, "is not valid YAML") from None
    except RecursionError:
        raise UnreadableFile(path, "is nested too deeply") from None


def read_json(path: Path) -> Any:
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UnreadableFile(path, f"is not valid JSON (line {error.lineno})") from None
    except RecursionError:
        raise UnreadableFile(path, "is nested too deeply") from None
