"""The registration form in a real browser (Debian's Chromium driven by Playwright): register a
household with a malformed national ID, see the error next to the field, correct it and land
on the new household's page; axe-core on the empty form and on the form with errors, in
English and in Arabic (right to left). Screenshots: register-en, register-errors-ar."""

import re

import pytest

from browser_support import CHROMIUM_MISSING, Served, axe_check, screenshot, sign_in_page
from factories import LOCALITY, invalid_national_id, make_areas, national_id
from sijill.api import create_app
from web_support import web_user

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING, allow_module_level=True)
pytest.importorskip("playwright.sync_api")
pytest.importorskip("axe_playwright_python.sync_playwright")

NUMBER = "#f-members-0-national_id-number"


def _fill(page, number: str) -> None:
    page.locator("#f-area_code").fill(LOCALITY)
    page.locator("#f-members-0-relationship").select_option("head")
    page.locator("#f-members-0-given_name_ar").fill("سلمى")
    page.locator("#f-members-0-given_name_lat").fill("Salma")
    page.locator("#f-members-0-family_name_lat").fill("Haddad")
    page.locator("#f-members-0-national_id-type").select_option("national_id")
    page.locator(NUMBER).fill(number)


def test_register_with_an_error_then_corrected(browser, settings, sessions):
    make_areas(sessions)
    web_user(sessions, "clerk", "registrar", "SJ01")
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    page = context.new_page()
    with Served(create_app(settings)) as served:
        base = served.url
        sign_in_page(page, base, "clerk")
        page.get_by_role("link", name="Register a household").first.click()
        page.wait_for_url(f"{base}/web/households/new")
        axe_check(page, "register (en)")
        screenshot(page, "register-en")

        _fill(page, invalid_national_id())
        page.get_by_role("button", name="Register").click()
        page.wait_for_selector(f"{NUMBER}[aria-invalid=true]")
        error = page.locator("#f-members-0-national_id-number-error")
        assert "not valid" in error.inner_text()
        # Described by its error, so a screen reader says it with the field.
        assert "national_id-number-error" in page.locator(NUMBER).get_attribute("aria-describedby")
        assert page.locator("#f-members-0-given_name_lat").input_value() == "Salma"
        axe_check(page, "register with errors (en)")

        page.get_by_role("link", name="العربية").click()
        page.wait_for_function("document.documentElement.dir === 'rtl'")
        axe_check(page, "register (ar)")
        # The language link reloads the empty form: the same error again, in Arabic.
        _fill(page, invalid_national_id())
        page.locator("form.household-form button[type=submit]").first.click()
        page.wait_for_selector(f"{NUMBER}[aria-invalid=true]")
        assert page.locator("html").get_attribute("lang") == "ar"
        axe_check(page, "register with errors (ar)")
        screenshot(page, "register-errors-ar")
        page.get_by_role("link", name="English").click()
        page.wait_for_function("document.documentElement.dir === 'ltr'")

        _fill(page, invalid_national_id())
        page.get_by_role("button", name="Register").click()
        page.wait_for_selector(f"{NUMBER}[aria-invalid=true]")
        page.locator(NUMBER).fill(national_id())
        page.get_by_role("button", name="Register").click()
        page.wait_for_url(re.compile(re.escape(base) + r"/web/households/[0-9]+$"))
        assert page.get_by_text("Haddad").first.is_visible()
        assert page.locator("h1").inner_text().startswith("Household")
    context.close()
