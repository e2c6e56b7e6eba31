"""The payment instrument form in a real browser, in Arabic (right to left): a mistyped IBAN
shown next to its input, corrected, and the household's page showing the instrument masked;
axe-core on the form, empty and with its error. Screenshots: instrument-ar,
instrument-errors-ar, instrument-recorded-ar."""

import pytest

from browser_support import CHROMIUM_MISSING, Served, axe_check, screenshot, sign_in_page
from factories import auth_headers, household, make_areas
from sijill.api import create_app
from web_support import web_user

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING, allow_module_level=True)
pytest.importorskip("playwright.sync_api")
pytest.importorskip("axe_playwright_python.sync_playwright")

IBAN = "TR330006100519786457841326"


def test_an_instrument_in_arabic_with_an_error_then_corrected(browser, settings, sessions):
    from fastapi.testclient import TestClient

    make_areas(sessions)
    app = create_app(settings)
    with TestClient(app, headers=auth_headers(sessions, settings)) as api:
        household_id = api.post("/households", json=household()).json()["household_id"]
    web_user(sessions, "amal", "payment_officer", "SJ01")
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    page = context.new_page()
    with Served(app) as served:
        base = served.url
        sign_in_page(page, base, "amal")
        page.get_by_role("link", name="العربية").click()
        page.wait_for_function("document.documentElement.dir === 'rtl'")
        page.goto(f"{base}/web/households/{household_id}")
        page.locator(f"a[href='/web/households/{household_id}/instruments/new']").click()
        page.wait_for_url(f"{base}/web/households/{household_id}/instruments/new")
        assert page.locator("html").get_attribute("dir") == "rtl"
        axe_check(page, "instrument (ar)")
        screenshot(page, "instrument-ar")

        page.locator("#kind-bank").check()
        # Once a kind is chosen, only its details are shown.
        assert page.locator("[data-kind=wallet]").is_hidden()
        page.locator("#f-bank-holder").fill("أحمد الخطيب")
        page.locator("#f-bank-iban").fill(IBAN[:-1] + "7")
        page.locator("form.instrument-form button[type=submit]").click()
        page.wait_for_selector("#f-bank-iban[aria-invalid=true]")
        assert page.locator("#f-bank-iban-error").is_visible()
        described = page.locator("#f-bank-iban").get_attribute("aria-describedby")
        assert "f-bank-iban-error" in described
        assert page.locator("#f-bank-holder").input_value() == "أحمد الخطيب"
        assert page.get_by_role("alert").count() >= 1
        axe_check(page, "instrument with errors (ar)")
        screenshot(page, "instrument-errors-ar")

        page.locator("#f-bank-iban").fill(IBAN)
        page.locator("form.instrument-form button[type=submit]").click()
        page.wait_for_url(f"{base}/web/households/{household_id}?done=instrument-active")
        shown = page.locator("#instrument-active").inner_text()
        assert "1326" in shown and IBAN not in page.content()
        screenshot(page, "instrument-recorded-ar")
    context.close()
