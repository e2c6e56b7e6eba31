"""compound names in name search: "عبد الرحمن" = "عبدالرحمن", "Abdel Rahman" = "Abdelrahman"

`person.search_name` (what name search looks in) is recomputed for the persons whose key can
change: those with "عبد" or "abd" in it. The fold is a frozen copy (`_normalise`,
`_search_name`) of `sijill.identity.names` on the day of this revision, with and without the
compound rule: live code may change, this upgrade and its downgrade must not.

`person_version.search_name` is left as it was written: history is never searched by name, and a
version records what was stored at its time.

Revision ID: 0010
Revises: 0009
"""

import re
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 20_000
_NAME_PARTS = (
    "given_name_ar",
    "father_name_ar",
    "grandfather_name_ar",
    "family_name_ar",
    "given_name_lat",
    "father_name_lat",
    "grandfather_name_lat",
    "family_name_lat",
)
_FOLD = [
    ("[\u064b-\u065f\u0670\u0640]", ""),
    ("[\u0622\u0623\u0625\u0671]", "\u0627"),
    ("\u0629", "\u0647"),
    ("\u0649", "\u064a"),
    ("\u0624", "\u0648"),
    ("\u0626", "\u064a"),
    ("[\u0300-\u036f]", ""),
    ("['`\u2019\u02bf\u02be]", ""),
    ("[^0-9a-z\u0600-\u06ff]+", " "),
    ("^ +| +$", ""),
]
_COMPOUND = [
    ("(^| )\u0639\u0628\u062f ", "\\g<1>\u0639\u0628\u062f"),
    ("(^| )abd ?(el|al|ul|ol|oul)? ", "\\g<1>abd\\g<2>"),
]


def _rules(compound: bool) -> list[tuple[re.Pattern, str]]:
    return [(re.compile(p), r) for p, r in _FOLD + (_COMPOUND if compound else [])]


def _normalise(text: str | None, rules) -> str:
    if not text:
        return ""
    value = unicodedata.normalize("NFKD", text).lower()
    for pattern, replacement in rules:
        value = pattern.sub(replacement, value)
    return value


def _search_name(row, rules) -> str:
    words = (_normalise(getattr(row, part), rules) for part in _NAME_PARTS)
    return " ".join(word for word in words if word)


def _refold(compound: bool) -> None:
    """Recompute the search key of every person it may change, a batch at a time."""
    rules = _rules(compound)
    person = sa.table("person", sa.column("id"), sa.column("search_name"))
    columns = [sa.column(part) for part in _NAME_PARTS]
    connection = op.get_bind()
    candidates = sa.or_(
        person.c.search_name.like("%\u0639\u0628\u062f%"), person.c.search_name.like("%abd%")
    )
    update = (
        sa.update(person)
        .where(person.c.id == sa.bindparam("row_id"))
        .values(search_name=sa.bindparam("key"))
    )
    last = None
    while True:
        query = sa.select(person.c.id, person.c.search_name, *columns).select_from(person)
        query = query.where(candidates).order_by(person.c.id).limit(_BATCH)
        if last is not None:
            query = query.where(person.c.id > last)
        rows = connection.execute(query).all()
        if not rows:
            return
        changed = [
            {"row_id": row.id, "key": key}
            for row in rows
            if (key := _search_name(row, rules)) != row.search_name
        ]
        if changed:
            connection.execute(update, changed)
        last = rows[-1].id


def upgrade() -> None:
    _refold(compound=True)


def downgrade() -> None:
    _refold(compound=False)
