"""An XML file written element by element onto lxml's incremental writer, hashed on its way
to disk (no second read of a large file), and whole or not at all: written as `.part`,
flushed, then renamed into place, so a killed process never leaves half a file under the
final name and a refused one leaves nothing. Owner-only: payment files hold personal data."""

import hashlib
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from sijill.payments.batch_files import whole_file


class XmlWriter:
    """Elements of one namespace, on lxml's incremental writer."""

    def __init__(self, xf: etree.xmlfile, ns: str, raw=None):
        self.xf = xf
        self.ns = ns
        self.raw = raw  # the file under `xf`, for text already XML (flush `xf` first)
        self._tags: dict[str, str] = {}

    def _tag(self, name: str) -> str:
        tag = self._tags.get(name)
        if tag is None:
            tag = self._tags[name] = f"{{{self.ns}}}{name}"
        return tag

    def element(self, name: str, nsmap: dict | None = None, **attrib: str):
        return self.xf.element(self._tag(name), attrib or None, nsmap)

    def leaf(self, path: str | tuple[str, ...], text: str, **attrib: str) -> None:
        """`path` ("A", "B") writes <A><B>text</B></A>; attributes go on the innermost."""
        if isinstance(path, str):
            with self.element(path, **attrib):
                self.xf.write(text)
        else:
            with self.element(path[0]):
                self.leaf(path[1] if len(path) == 2 else path[1:], text, **attrib)

    def newline(self) -> None:
        self.xf.write("\n")


class _HashingFile:
    def __init__(self, file, digest):
        self.file = file
        self.digest = digest

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.file.write(data)


def write_xml_file(path: Path, ns: str, body: Callable[[XmlWriter], None]) -> str:
    """Write `path` with `body` (which raises to refuse it), whole or not at all; return its
    bytes' SHA-256."""
    digest = hashlib.sha256()
    with whole_file(path, binary=True) as file:
        hashing = _HashingFile(file, digest)
        with etree.xmlfile(hashing, encoding="UTF-8") as xf:
            xf.write_declaration()
            body(XmlWriter(xf, ns, raw=hashing))
    return digest.hexdigest()
