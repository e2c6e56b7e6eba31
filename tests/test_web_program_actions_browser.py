"""A program officer's action pages in Chromium: a program's page with its run form, and a
PMT model's page with its approval button, each checked by axe-core in English and Arabic
(right to left), with screenshots (test-screenshots/); the form runs a dry run and lands on
the job's page."""

import pytest

from browser_support import CHROMIUM_MISSING, Served, axe_check, screenshot, sign_in_page
from sijill.targeting.pmt_models import save_model
from test_targeting_pmt import _fitted
from test_web_program_actions import country, world  # noqa: F401  (fixtures)

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING, allow_module_level=True)
pytest.importorskip("playwright.sync_api")
pytest.importorskip("axe_playwright_python.sync_playwright")


def test_run_form_and_model_page_in_english_and_arabic(browser, world, tmp_path):  # noqa: F811
    _, _, artifact = _fitted(tmp_path, n=300)
    with world["app"].state.sessions() as session, session.begin():
        save_model(session, artifact, "analyst", "survey.csv")
    pages = {
        "program-run": "/web/programs/universal-child-benefit",
        "model": f"/web/targeting/models/{artifact['version']}",
    }
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    page = context.new_page()
    with Served(world["app"]) as served:
        base = served.url
        sign_in_page(page, base, "officer")
        page.get_by_role("link", name="PMT models").click()
        page.wait_for_url(f"{base}/web/targeting/models")
        for language in ("en", "ar"):
            if language == "ar":
                page.get_by_role("link", name="العربية").click()
                page.wait_for_function("document.documentElement.dir === 'rtl'")
            for name, path in pages.items():
                assert page.goto(f"{base}{path}").status == 200, (name, language)
                assert page.locator("html").get_attribute("dir") == (
                    "rtl" if language == "ar" else "ltr"
                )
                axe_check(page, f"{name} ({language})")
                if name == "model":
                    assert page.locator("#terms tbody tr").count() == len(artifact["terms"]) + 1
                    assert page.locator("form[action$='/approve'] button").count() == 1
                else:
                    assert page.locator("#run-form select#f-area option").count() >= 2
                screenshot(page, f"{name}-{language}")
        # A dry run from the form: the job's page next.
        page.goto(f"{base}{pages['program-run']}")
        page.locator("#f-dry_run").check()
        page.locator("#run-form button[type=submit]").click()
        page.wait_for_url(f"{base}/web/jobs/*")
    context.close()
