"""The programs' pages in Chromium: the list, a program and a targeting evaluation, each
checked by axe-core in English and Arabic (right to left), with screenshots of the program in
both languages and of the evaluation in English (test-screenshots/)."""

import pytest

from browser_support import CHROMIUM_MISSING, Served, axe_check, screenshot, sign_in_page
from sijill.api import create_app
from test_web_programs import country, evaluate_mpi, world  # noqa: F401  (fixtures)

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING, allow_module_level=True)
pytest.importorskip("playwright.sync_api")
pytest.importorskip("axe_playwright_python.sync_playwright")


def test_programs_pages_in_english_and_arabic(browser, world, country):  # noqa: F811
    app = create_app(world["settings"])
    _report, job_id = evaluate_mpi(app, world["engine"], world["settings"], country)
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    page = context.new_page()
    pages = {
        "programs": "/web/programs",
        "program": "/web/programs/jo-naf-cash",
        "evaluation": f"/web/targeting/evaluations/{job_id}",
    }
    with Served(app) as served:
        base = served.url
        sign_in_page(page, base, "officer")
        page.get_by_role("link", name="Programs").click()
        page.wait_for_url(f"{base}/web/programs")
        page.get_by_role("link", name="National Aid Fund cash support").click()
        page.wait_for_url(f"{base}/web/programs/jo-naf-cash")
        for language in ("en", "ar"):
            if language == "ar":
                page.get_by_role("link", name="العربية").click()
                page.wait_for_function("document.documentElement.dir === 'rtl'")
            for name, path in pages.items():
                answer = page.goto(f"{base}{path}")
                assert answer.status == 200, (name, language)
                assert page.locator("html").get_attribute("dir") == (
                    "rtl" if language == "ar" else "ltr"
                )
                axe_check(page, f"{name} ({language})")
                if name == "program":
                    # Rules stay left to right inside a right-to-left page.
                    code = page.locator("#clauses code").first
                    assert code.get_attribute("dir") == "ltr"
                    assert page.locator("#counts dd").count() == 6
                if name == "evaluation":
                    assert page.locator("table caption").count() >= 4
                if (name, language) in {("program", "en"), ("program", "ar"), ("evaluation", "en")}:
                    screenshot(page, f"{name}-{language}")
    context.close()
