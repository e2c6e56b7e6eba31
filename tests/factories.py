"""Test data: a small area hierarchy, valid national IDs, household payloads for the API, a
synthetic country imported into a registry."""

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from stdnum.tr import tckimlik

from sijill.core.areas import Area, load_areas
from sijill.core.db import make_engine, transaction
from sijill.core.settings import Settings
from sijill.registry.schemas import HouseholdFields, MemberUpdate

# country -> governorate -> district -> locality, two branches so area searches can exclude.
AREAS = [
    ("SJ", None, "country", "سجل", "Sijill"),
    ("SJ01", "SJ", "governorate", "الشمال", "North"),
    ("SJ0101", "SJ01", "district", "الوادي", "Valley"),
    ("SJ010101", "SJ0101", "locality", "العين", "Al Ain"),
    ("SJ010102", "SJ0101", "locality", "النخيل", "Palms"),
    ("SJ02", "SJ", "governorate", "الجنوب", "South"),
    ("SJ0201", "SJ02", "district", "الساحل", "Coast"),
    ("SJ020101", "SJ0201", "locality", "الميناء", "Harbour"),
]
LOCALITY = "SJ010101"
OTHER_LOCALITY = "SJ020101"

_payloads = itertools.count(100_000_000)


def make_areas(sessions) -> dict[str, int]:
    """The hierarchy in AREAS, written through the ORM; returns area id by code."""
    ids: dict[str, int] = {}
    with transaction(sessions) as session:
        for code, parent, level, name_ar, name_en in AREAS:
            area = Area(
                code=code,
                parent_id=ids.get(parent) if parent else None,
                level=level,
                name_ar=name_ar,
                name_en=name_en,
                urban=True if level == "locality" else None,
            )
            session.add(area)
            session.flush()
            ids[code] = area.id
    return ids


def national_id() -> str:
    """A fresh valid Turkish T.C. Kimlik number (the default scheme of the test settings)."""
    payload = str(next(_payloads))
    return payload + tckimlik.calc_check_digits(payload)


def invalid_national_id() -> str:
    number = national_id()
    return number[:-1] + str((int(number[-1]) + 1) % 10)


def person(relationship: str = "head", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "relationship": relationship,
        "given_name_ar": "أحمد",
        "father_name_ar": "محمود",
        "family_name_ar": "الخطيب",
        "given_name_lat": "Ahmad",
        "father_name_lat": "Mahmoud",
        "family_name_lat": "Al-Khatib",
        "sex": "M",
        "birth_date": "1980-05-12",
        "marital_status": "married",
        "nationality": "XSJ",
        "residency_status": "citizen",
        "national_id": {"type": "national_id", "number": national_id()},
        "education_level": "upper_secondary",
        "employment_status": "employed",
        "employment_sector": "informal",
    }
    base.update(fields)
    return base


def spouse(**fields: Any) -> dict[str, Any]:
    values = {
        "given_name_ar": "فاطمة",
        "given_name_lat": "Fatima",
        "sex": "F",
        "birth_date": "1984",
        "employment_status": "inactive",
        "employment_sector": None,
    }
    values.update(fields)
    return person(values.pop("relationship", "spouse"), **values)


def child(**fields: Any) -> dict[str, Any]:
    values = {
        "given_name_ar": "يوسف",
        "given_name_lat": "Yusuf",
        "birth_date": "2015-03",
        "marital_status": "never_married",
        "national_id": None,
        "education_level": "primary",
        "enrolled": True,
        "employment_status": "not_applicable",
        "employment_sector": None,
    }
    values.update(fields)
    return person(values.pop("relationship", "child"), **values)


def household(members: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "area_code": LOCALITY,
        "address": "12 Olive Street",
        "latitude": 31.95,
        "longitude": 35.91,
        "dwelling_tenure": "rented",
        "dwelling_walls": "concrete",
        "dwelling_roof": "concrete",
        "dwelling_floor": "tiles",
        "dwelling_rooms": 2,
        "water_source": "piped_dwelling",
        "sanitation": "flush_sewer",
        "cooking_fuel": "gas",
        "electricity": "grid",
        "assets": ["tv", "fridge", "mobile_phone"],
        "livestock": {"poultry": 6},
        "income_sources": ["wages_informal"],
        "registration_source": "on_demand",
        "registration_date": "2026-01-15",
        "enumerator": "E042",
        "consent": {
            "given": True,
            "date": "2026-01-15",
            "purposes": ["eligibility_assessment", "payment"],
        },
        "members": members if members is not None else [person(), spouse(), child()],
    }
    base.update(fields)
    return base


def as_update(public: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """An update that changes nothing, made from a household as the API shows it."""
    update = {key: public[key] for key in HouseholdFields.model_fields}
    update["version"] = public["version"]
    update["members"] = [
        {key: member[key] for key in MemberUpdate.model_fields} for member in public["members"]
    ]
    update.update(fields)
    return update


def member_update(public_member: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A member as an update lists them, from the API's view of them, with changes."""
    return {**{key: public_member[key] for key in MemberUpdate.model_fields}, **fields}


def make_user(
    sessions, username: str, role: str, area_code: str | None = None, *, service: bool = False
) -> str:
    """A user made through the service layer, as an administrator would; their secret."""
    from sijill.security.principal import Principal
    from sijill.security.users.accounts import GrantSpec, create_user

    with transaction(sessions) as session:
        return create_user(
            session,
            Principal.system("test"),
            username,
            [GrantSpec(role, area_code)],
            service=service,
        )


@contextmanager
def commands_as(
    monkeypatch, engine: Engine, database_url: str, work_dir: Path, username: str, role: str
) -> Iterator[None]:
    """`sijill` commands invoked in the block run as a service account of this role, on this
    database and work folder (the settings read afresh on the way in and out)."""
    from sijill.cli import _register_commands
    from sijill.cli import app as cli_app
    from sijill.core.db import session_factory
    from sijill.core.settings import get_settings

    key = make_user(session_factory(engine), username, role, service=True)
    monkeypatch.setenv("SIJILL_DATABASE_URL", database_url)
    monkeypatch.setenv("SIJILL_SERVICE_KEY", f"{username}:{key}")
    monkeypatch.setenv("SIJILL_SESSION_FILE", str(work_dir / f"{username}-session.json"))
    monkeypatch.setenv("SIJILL_WORK_DIR", str(work_dir))
    if not cli_app.registered_commands:
        _register_commands()
    get_settings.cache_clear()
    try:
        yield
    finally:
        get_settings.cache_clear()


def auth_headers(
    sessions, settings, role: str = "administrator", area_code: str | list[str] | None = None
) -> dict[str, str]:
    """A bearer token for a user with one role in one area (None: the whole country) or in
    several, made without a password (hashing one costs a tenth of a second per user)."""
    from sqlalchemy import select

    from sijill.core import clock
    from sijill.core.areas import Area
    from sijill.security.keys.keyring import install_keyring
    from sijill.security.users import tokens
    from sijill.security.users.accounts import user_grants
    from sijill.security.users.models import RoleGrant, User

    area_codes = [area_code] if isinstance(area_code, str) else area_code
    username = f"{role}-{'+'.join(area_codes) if area_codes else 'national'}".lower()
    with transaction(sessions) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            user = User(
                username=username,
                password_hash=None,
                password_one_time=False,
                is_service=False,
                disabled=False,
                token_version=1,
                created_at=clock.utcnow(),
                created_by="test",
            )
            session.add(user)
            session.flush()
            for code in area_codes or [None]:
                area_id = session.scalar(select(Area.id).where(Area.code == code)) if code else None
                session.add(RoleGrant(user_id=user.id, role=role, area_id=area_id))
            session.flush()
        grants = user_grants(session, user.id)
    install_keyring(settings)
    pair = tokens.issue(settings, username, 1, grants)
    return {"Authorization": f"Bearer {pair.access_token}"}


IMPORTED_AT = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@contextmanager
def imported_registry(
    database_url: str, country: Path, work_dir: Path
) -> Iterator[tuple[Engine, Settings]]:
    """A registry holding a `sijill synth` country (its areas, then its files imported on
    IMPORTED_AT), and settings with a private work folder and cells of five."""
    from unittest.mock import patch

    from sijill.registry.bulk.service import import_path

    settings = Settings(database_url=database_url, work_dir=work_dir, min_cell_size=5)
    engine = make_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            load_areas(session, country / "areas.csv")
        # The tests ask for the registry as of fixed days: registered on a fixed day before
        # them, whatever day the tests run.
        with patch("sijill.registry.bulk.service.utcnow", return_value=IMPORTED_AT):
            import_path(engine, settings, country, source="synth")
        yield engine, settings
    finally:
        engine.dispose()
