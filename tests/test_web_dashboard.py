"""The dashboard page: its figures are the API's suppressed aggregates for the same user (a
national analyst, a district one), a suppressed cell never shows as a number (tables, map,
charts), the map draws one path per area with a polygon, and a role without the aggregates
permission is refused."""

import html
import json
import re
from datetime import date
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from factories import auth_headers, household, person
from sijill.api import create_app
from sijill.core import clock
from sijill.core.areas import load_areas
from sijill.core.db import transaction
from sijill.core.i18n.formats import format_number, format_percent
from sijill.core.settings import Settings
from sijill.programs.models import ENROLLED, NOTIFIED, Enrollment, ProgramVersion
from web_support import sign_in, web_user

# code, parent, level, English name, west longitude, households. Three governorates side by
# side from west to east; at a minimum cell of 3, East (2 households) is hidden, and West is
# its complement; in Middle's district, Qasr (2) is hidden and Marj its complement.
TREE = [
    ("SJ", None, "country", "Sijill", 35.0, 0),
    ("SJ01", "SJ", "governorate", "West", 35.0, 0),
    ("SJ0101", "SJ01", "district", "West District", 35.0, 0),
    ("SJ010101", "SJ0101", "locality", "Tal", 35.0, 5),
    ("SJ02", "SJ", "governorate", "Middle", 36.0, 0),
    ("SJ0201", "SJ02", "district", "Middle District", 36.0, 0),
    ("SJ020101", "SJ0201", "locality", "Ain", 36.0, 4),
    ("SJ020102", "SJ0201", "locality", "Marj", 36.0, 3),
    ("SJ020103", "SJ0201", "locality", "Qasr", 36.0, 2),
    ("SJ03", "SJ", "governorate", "East", 37.0, 0),
    ("SJ0301", "SJ03", "district", "East District", 37.0, 0),
    ("SJ030101", "SJ0301", "locality", "Bir", 37.0, 2),
]
WEST, EAST = "SJ01", "SJ03"
DISTRICT = "SJ0201"
DIGITS = re.compile(r"[0-9\u0660-\u0669\u06f0-\u06f9]")


def _box(code: str, west: float) -> list[list[float]]:
    """Governorates one degree wide; a district fills its governorate; its localities are
    stacked from north to south."""
    siblings = [c for c, parent, *_ in TREE if parent == DISTRICT]
    south, north = 30.0, 33.0
    if code in siblings:
        k = siblings.index(code)
        north = 33.0 - k
        south = north - 1
    return [[west, south], [west + 1, south], [west + 1, north], [west, north], [west, south]]


def build_country(tmp_path, settings, sessions, min_cell: int = 3):
    """The tree loaded from a CSV and a GeoJSON (as `sijill areas load` does), its households
    registered through the API, and a program's enrollments. Returns the app and settings."""
    csv = tmp_path / "areas.csv"
    csv.write_text(
        "code,parent_code,level,name_ar,name_en\n"
        + "".join(f"{c},{p or ''},{lv},منطقة {n},{n}\n" for c, p, lv, n, *_ in TREE),
        encoding="utf-8",
    )
    features = [
        {
            "type": "Feature",
            "properties": {"code": code},
            "geometry": {"type": "Polygon", "coordinates": [_box(code, west)]},
        }
        for code, _p, _l, _n, west, _h in TREE
    ]
    geojson = tmp_path / "areas.geojson"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with transaction(sessions) as session:
        load_areas(session, csv, geojson)
    settings = Settings(database_url=settings.database_url, min_cell_size=min_cell)
    app = create_app(settings)
    ids: dict[str, list[int]] = {}
    with TestClient(app, headers=auth_headers(sessions, settings)) as admin:
        for code, *_rest, count in TREE:
            for _ in range(count):
                members = [person(), person("spouse", sex="F")]
                answer = admin.post("/households", json=household(area_code=code, members=members))
                assert answer.status_code == 201, answer.text
                ids.setdefault(code, []).append(int(answer.json()["household_id"]))
    # A program that selected three households of Tal (all enrolled) and three of Ain (told,
    # not answered yet).
    chosen = [(h, ENROLLED) for h in ids["SJ010101"][:3]] + [
        (h, NOTIFIED) for h in ids["SJ020101"][:3]
    ]
    with transaction(sessions) as session:
        session.add(
            ProgramVersion(
                program="cash",
                version=1,
                digest="0" * 64,
                body={},
                registered_by="test",
                registered_at=clock.utcnow(),
            )
        )
        for household_id, status in chosen:
            session.add(
                Enrollment(
                    program="cash",
                    household_id=household_id,
                    status=status,
                    since=date(2025, 1, 1),
                    run_id=1,
                )
            )
    return app, settings


@pytest.fixture
def country(tmp_path, settings, sessions):
    app, settings = build_country(tmp_path, settings, sessions)
    web_user(sessions, "analyst", "analyst")
    web_user(sessions, "local", "analyst", DISTRICT)
    web_user(sessions, "clerk", "registrar")
    return app, settings, sessions


def _api(app, sessions, settings, area: str | None, level: str | None = None) -> dict:
    headers = auth_headers(sessions, settings, "analyst", area)
    with TestClient(app, headers=headers) as client:
        answer = client.get("/registry/summary/areas", params={"level": level} if level else {})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _page(app, username: str, query: str = "") -> str:
    with TestClient(app, follow_redirects=False) as client:
        assert sign_in(client, username).status_code == 303
        answer = client.get(f"/web/dashboard{query}")
    assert answer.status_code == 200, answer.text
    return answer.text


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment))


def _element(page: str, tag: str, element_id: str) -> str:
    found = re.search(rf'<{tag} id="{element_id}"[^>]*>(.*?)</{tag}>', page, re.S)
    assert found, f"no {tag}#{element_id} on the page"
    return found.group(1)


def _cells(row: str) -> list[str]:
    return [" ".join(_text(c).split()) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def _written(value) -> str:
    return "suppressed" if value is None else format_number(value)


def _share(part, whole) -> str:
    if part is None:
        return "suppressed"
    return "no households" if not whole else format_percent(part / whole)


def _check_against_api(page: str, answer: dict) -> None:
    for area in answer["areas"]:
        row = _cells(_element(page, "tr", f"area-{area['code']}"))
        assert row[:2] == [_written(area["households"]), _written(area["persons"])], area
        chart = _cells(_element(page, "tr", f"chart-{area['code']}"))
        assert chart[0] == _written(area["households"]), area
        title = _text(_element(page, "path", f"map-{area['code']}"))
        assert title.strip() == f"{area['name']}: {_written(area['households'])}"
        coverage = _cells(_element(page, "tr", f"coverage-{area['code']}"))
        [cash] = area["programs"]
        whole = area["households"] if cash["enrolled"] is not None else None
        assert coverage == [
            _written(cash["selected"]),
            _written(cash["enrolled"]),
            _share(cash["enrolled"], whole),
        ], area
    total = _cells(_element(page, "tr", "area-total"))
    assert total[:2] == [
        _written(answer["total"]["households"]),
        _written(answer["total"]["persons"]),
    ]
    # One path per area with a polygon (every area here has one), none for another.
    assert len(re.findall(r'<path id="map-', page)) == len(answer["areas"])


def test_the_national_analysts_page_is_the_apis_answer(country):
    app, settings, sessions = country
    answer = _api(app, sessions, settings, None)
    assert answer["level"] == "governorate"
    shown = {a["code"]: a["households"] for a in answer["areas"]}
    assert shown == {WEST: None, "SJ02": 9, EAST: None}  # East small, West its complement
    page = _page(app, "analyst")
    _check_against_api(page, answer)
    assert 'href="/web/dashboard"' in page  # the nav link, for who may see aggregates
    # Localities: the same page for the level the API gives.
    answer = _api(app, sessions, settings, None, "locality")
    _check_against_api(_page(app, "analyst", "?level=locality"), answer)
    # Coverage over the whole country: 6 selected, 3 enrolled, of 16 households.
    coverage = _element(page, "table", "chart-coverage")
    assert _cells(re.search(r"<tbody>(.*?)</tbody>", coverage, re.S).group(1))[:3] == [
        "6",
        "3",
        format_percent(Decimal(3) / Decimal(16)),
    ]


def test_a_district_analyst_sees_only_their_districts_areas(country):
    app, settings, sessions = country
    answer = _api(app, sessions, settings, DISTRICT)
    assert answer["level"] == "locality" and answer["levels"] == ["locality"]
    assert [a["code"] for a in answer["areas"]] == ["SJ020101", "SJ020102", "SJ020103"]
    page = _page(app, "local")
    _check_against_api(page, answer)
    for code, *_ in TREE:
        if not code.startswith(DISTRICT):
            assert f'id="map-{code}"' not in page and f'id="area-{code}"' not in page
    # A level above the user's areas is refused, not drawn.
    with TestClient(app, follow_redirects=False) as client:
        sign_in(client, "local")
        assert client.get("/web/dashboard?level=governorate").status_code == 422


def test_a_suppressed_cell_never_shows_as_a_number(country):
    app, settings, sessions = country
    for user, area, query in [
        ("analyst", None, ""),
        ("analyst", None, "?level=locality&indicator=persons"),
        ("analyst", None, "?level=district&indicator=enrolled:cash"),
        ("local", DISTRICT, "?indicator=selected:cash"),
    ]:
        level = dict(p.split("=") for p in query[1:].split("&") if p).get("level")
        answer = _api(app, sessions, settings, area, level)
        page = _page(app, user, query)
        hidden = [a["code"] for a in answer["areas"] if a["households"] is None]
        assert hidden, query
        for code in hidden:
            for tag, prefix in [("tr", "area-"), ("tr", "chart-"), ("tr", "coverage-")]:
                fragment = _text(_element(page, tag, prefix + code))
                assert not DIGITS.search(fragment), (query, code, fragment)
                assert "suppressed" in fragment
            title = _text(_element(page, "path", f"map-{code}"))
            assert not DIGITS.search(title) and "suppressed" in title, (query, title)
            assert re.search(rf'<path id="map-{code}"[^>]*fill="url\(#suppressed\)"', page)


def test_a_role_without_aggregates_is_refused(country):
    app, *_ = country
    with TestClient(app, follow_redirects=False) as client:
        sign_in(client, "clerk")
        refused = client.get("/web/dashboard")
        households = client.get("/web/households")
    assert refused.status_code == 403
    assert "map-" not in refused.text
    assert 'href="/web/dashboard"' not in households.text
