"""docs/data-format.md's field tables, generated from the field catalogue (`registry.fields`).

The generated parts sit between marker comments; everything else in the document is written by
hand. To rewrite them after changing the catalogue, and to check them (the test suite does):

    python -m sijill.registry.fields_doc docs/data-format.md
    python -m sijill.registry.fields_doc --check docs/data-format.md
"""

import re
import sys
from pathlib import Path

from sijill.registry.fields import HOUSEHOLD, PERSON, Catalogue, Field

_BEGIN = "<!-- generated from src/sijill/registry/fields.py: {part} -->"
_PART = re.compile(
    r"(?P<begin><!-- generated from src/sijill/registry/fields\.py: (?P<part>[a-z ]+) -->\n)"
    r".*?(?P<end><!-- end of generated (?P=part) -->)",
    re.DOTALL,
)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def values_cell(field: Field) -> str:
    """What the exchange format's table says a column holds."""
    return field.doc.format(
        codes=", ".join(f"`{code}`" for code in field.codes),
        minimum=_number(field.minimum),
        maximum=_number(field.maximum),
    )


def exchange_table(catalogue: Catalogue) -> str:
    """The columns of the exchange format, in order; neighbours described alike share a row."""
    rows: list[tuple[list[str], str]] = []
    for field in catalogue:
        if not field.exchange:
            continue
        cell = values_cell(field)
        if rows and rows[-1][1] == cell:
            rows[-1][0].append(field.name)
        else:
            rows.append(([field.name], cell))
    lines = ["| column | values |", "|---|---|"]
    lines += [f"| {', '.join(f'`{n}`' for n in names)} | {cell} |" for names, cell in rows]
    return "\n".join(lines) + "\n"


def labels_table(catalogue: Catalogue) -> str:
    """Every field with its labels, whether it is personal, and what the export does with it."""
    lines = [
        "| field | العربية | français | English | personal | pseudonymised export |",
        "|---|---|---|---|---|---|",
    ]
    for field in catalogue:
        name = f"`{field.name}`" + ("" if field.exchange else " †")
        personal = ("yes, encrypted" if field.encrypted else "yes") if field.personal else ""
        ar, fr, en = field.labels
        lines.append(f"| {name} | {ar} | {fr} | {en} | {personal} | {field.export} |")
    return "\n".join(lines) + "\n"


PARTS = {
    "household columns": lambda: exchange_table(HOUSEHOLD),
    "person columns": lambda: exchange_table(PERSON),
    "household labels": lambda: labels_table(HOUSEHOLD),
    "person labels": lambda: labels_table(PERSON),
}


def render(text: str) -> str:
    """`text` with every generated part written afresh from the catalogue."""

    def part(match: re.Match) -> str:
        generated = PARTS[match["part"]]()
        return f"{match['begin']}{generated}{match['end']}"

    rendered = _PART.sub(part, text)
    missing = [name for name in PARTS if _BEGIN.format(part=name) not in rendered]
    if missing:
        raise ValueError(f"no place marked for the generated {', '.join(missing)}")
    return rendered


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [Path(arg) for arg in argv if arg != "--check"] or [Path("docs/data-format.md")]
    stale = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        rendered = render(text)
        if rendered == text:
            continue
        if check:
            stale.append(str(path))
        else:
            path.write_text(rendered, encoding="utf-8")
            print(f"rewrote the field tables of {path}")
    if stale:
        print(
            f"{', '.join(stale)}: the field tables differ from the catalogue; run "
            "python -m sijill.registry.fields_doc to rewrite them",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
