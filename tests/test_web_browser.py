"""The web pages in a real browser: Debian's Chromium driven by Playwright (no browser
download), the app served by uvicorn on a free port. Sign in, search, open a household,
switch to Arabic (right to left, the layout mirrored), a household out of scope by URL, and a
payment batch's four-eyes approval. axe-core checks each main page (no serious or critical
violation); screenshots of the main pages in English and Arabic go to test-screenshots/."""

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from browser_support import CHROMIUM_MISSING, Served, axe_check, screenshot, sign_in_page
from factories import OTHER_LOCALITY, auth_headers, household, make_areas
from sijill.api import create_app
from sijill.core.db import session_factory
from sijill.core.ids import format_id
from test_payments import _prepare, country, cycle  # noqa: F401  (fixtures)
from web_support import web_user

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING, allow_module_level=True)
pytest.importorskip("playwright.sync_api")
pytest.importorskip("axe_playwright_python.sync_playwright")


def test_sign_in_search_household_arabic_and_out_of_scope(browser, settings, sessions):
    make_areas(sessions)
    with TestClient(create_app(settings), headers=auth_headers(sessions, settings)) as api:
        inside = api.post("/households", json=household()).json()
        outside = api.post("/households", json=household(area_code=OTHER_LOCALITY)).json()
    web_user(sessions, "clerk", "registrar", "SJ01")
    head = inside["members"][0]
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    page = context.new_page()
    with Served(create_app(settings)) as served:
        base = served.url
        sign_in_page(page, base, "clerk")
        axe_check(page, "search")
        page.get_by_label("Name, in Arabic or Latin letters").fill(head["given_name_lat"])
        page.get_by_role("button", name="Search").click()
        page.get_by_role("link", name=inside["household_id"]).click()
        page.wait_for_url(f"{base}/web/households/{inside['household_id']}")
        assert page.locator("html").get_attribute("dir") == "ltr"
        assert page.get_by_text(head["given_name_ar"], exact=False).first.is_visible()
        axe_check(page, "household (en)")
        screenshot(page, "household-en")
        english_nav = page.locator("#nav").bounding_box()

        page.get_by_role("link", name="العربية").click()
        page.wait_for_function("document.documentElement.dir === 'rtl'")
        assert page.locator("html").get_attribute("lang") == "ar"
        arabic_nav = page.locator("#nav").bounding_box()
        # Mirrored: the navigation moves from the left half of the bar to the right half.
        assert english_nav["x"] < 512 < arabic_nav["x"] + arabic_nav["width"]
        assert arabic_nav["x"] > english_nav["x"]
        axe_check(page, "household (ar)")
        screenshot(page, "household-ar")

        # The household page cold (a new browser context: nothing cached) stays light.
        cold = browser.new_context()
        cold.add_cookies(context.cookies())
        cold_page = cold.new_page()
        cold_page.goto(f"{base}/web/households/{inside['household_id']}")
        transferred = cold_page.evaluate(
            "performance.getEntriesByType('navigation').concat("
            "performance.getEntriesByType('resource'))"
            ".map(entry => [entry.name, entry.transferSize])"
        )
        total = sum(size for _name, size in transferred)
        print(f"household page cold: {total / 1024:.1f} KB in {len(transferred)} responses")
        assert len(transferred) == 2 and 0 < total < 300 * 1024
        cold.close()

        hidden = page.goto(f"{base}/web/households/{outside['household_id']}")
        assert hidden.status == 404
        assert outside["household_id"] not in page.content()
        screenshot(page, "not-found-ar")
        page.set_viewport_size({"width": 360, "height": 740})
        page.goto(f"{base}/web/households/{inside['household_id']}")
        # Usable on a small phone: nothing wider than the screen but the tables' own scroll.
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        screenshot(page, "household-ar-360")
    context.close()


@pytest.fixture
def prepared(cycle):  # noqa: F811  (the fixture imported above)
    """A prepared payment batch (tests/test_payments.py's cycle), its two officers, and
    settings whose keyring is the one the registry was imported with (the cycle's own keyring
    encrypts only the payment instruments, which the pages show masked)."""
    _prepare(cycle)
    cycle["web_settings"] = cycle["settings"].model_copy(
        update={"key_file": Path(os.environ["SIJILL_KEY_FILE"])}
    )
    sessions = session_factory(cycle["engine"])
    web_user(sessions, "payer", "payment_officer")
    web_user(sessions, "checker", "payment_officer")
    web_user(sessions, "admin", "administrator")
    return cycle


def test_four_eyes_approval_of_a_batch(browser, prepared):
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from sijill.payments.models import PaymentBatch

    with Session(prepared["engine"]) as session:
        batch_id = session.scalar(select(PaymentBatch.id).order_by(PaymentBatch.id))
    app = create_app(prepared["web_settings"])
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    page = context.new_page()
    with Served(app) as served:
        base = served.url
        sign_in_page(page, base, "payer")
        page.goto(f"{base}/web/payments/batches")
        axe_check(page, "batches")
        screenshot(page, "batches-en")
        page.get_by_role("link", name=str(batch_id), exact=True).click()
        page.wait_for_url(f"{base}/web/payments/batches/{batch_id}")
        axe_check(page, "batch")
        # The preparer's own approval: refused by the service, said plainly.
        page.get_by_role("button", name="Approve").click()
        page.get_by_role("alert").wait_for()
        assert "you prepared this batch" in page.get_by_role("alert").inner_text()
        assert page.locator("#batch-status").inner_text() == "prepared"
        screenshot(page, "batch-refused-en")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{base}/web/sign-in")

        sign_in_page(page, base, "checker")
        page.get_by_role("link", name="العربية").click()
        page.wait_for_function("document.documentElement.dir === 'rtl'")
        page.goto(f"{base}/web/payments/batches/{batch_id}")
        axe_check(page, "batch (ar)")
        page.get_by_role("button", name="اعتماد").click()
        page.get_by_role("status").wait_for()
        assert page.locator("#batch-status").inner_text() == "approved"
        screenshot(page, "batch-approved-ar")
    context.close()
    with Session(prepared["engine"]) as session:
        batch = session.get(PaymentBatch, batch_id)
        assert (batch.status, batch.approved_by) == ("approved", "checker")


def test_household_page_with_decisions_entitlements_and_payments(prepared):
    """What a caseworker sees of a family the programs and payments have reached: each
    decision in words, the entitlement and the payment, amounts written per locale."""
    from web_support import sign_in

    household_id = format_id(next(h for h in prepared["payable"] if h not in prepared["held"]))
    with TestClient(create_app(prepared["web_settings"]), follow_redirects=False) as client:
        sign_in(client, "admin")
        page = client.get(f"/web/households/{household_id}")
        assert page.status_code == 200
        text = page.text
        assert "Program decisions" in text and "selected" in text.lower()
        assert "Entitlements" in text and "2026-11" in text
        assert "Payments" in text and "bank " in text  # the instrument, masked
        client.cookies.set("sijill_lang", "fr", path="/web")
        french = client.get(f"/web/households/{household_id}").text
        assert "Décisions des programmes" in french and "XSJ" in french
