"""The dashboard in a real browser (Debian's Chromium through Playwright): in English and in
Arabic, checked by axe-core, the map not mirrored in Arabic while the page around it is, and
screenshots dashboard-en and dashboard-ar in test-screenshots/."""

import pytest

from browser_support import CHROMIUM_MISSING, Served, axe_check, screenshot, sign_in_page
from test_web_dashboard import EAST, WEST, build_country
from web_support import web_user

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING, allow_module_level=True)
pytest.importorskip("playwright.sync_api")
pytest.importorskip("axe_playwright_python.sync_playwright")


def test_dashboard_in_english_and_arabic(browser, tmp_path, settings, sessions):
    app, _settings = build_country(tmp_path, settings, sessions)
    web_user(sessions, "analyst", "analyst")
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    page = context.new_page()
    with Served(app) as served:
        base = served.url
        sign_in_page(page, base, "analyst")
        page.get_by_role("link", name="Dashboard").click()
        page.wait_for_url(f"{base}/web/dashboard")
        axe_check(page, "dashboard (en)")
        screenshot(page, "dashboard-en")
        west = page.locator(f"#map-{WEST}").bounding_box()
        east = page.locator(f"#map-{EAST}").bounding_box()
        nav = page.locator("#nav").bounding_box()
        assert west["x"] + west["width"] <= east["x"]

        # The plain GET form: another indicator, no script needed.
        page.get_by_label("Indicator on the map").select_option("persons")
        page.get_by_role("button", name="Show").click()
        page.wait_for_url(f"{base}/web/dashboard?level=governorate&indicator=persons")

        page.get_by_role("link", name="العربية").click()
        page.wait_for_function("document.documentElement.dir === 'rtl'")
        assert page.locator("html").get_attribute("lang") == "ar"
        axe_check(page, "dashboard (ar)")
        screenshot(page, "dashboard-ar")
        # The page is mirrored (the navigation moves to the right half) but the map is not:
        # west stays on the left of east.
        arabic_nav = page.locator("#nav").bounding_box()
        assert nav["x"] < 512 < arabic_nav["x"] + arabic_nav["width"]
        assert arabic_nav["x"] > nav["x"]
        west = page.locator(f"#map-{WEST}").bounding_box()
        east = page.locator(f"#map-{EAST}").bounding_box()
        assert west["x"] + west["width"] <= east["x"]
    context.close()
