"""The targeting, audit, payment totals and password pages in Chromium, checked by axe-core in
English and Arabic (right to left), with screenshots of the targeting forms and an MPI run's
page in both languages (test-screenshots/)."""

import pytest

from browser_support import CHROMIUM_MISSING, Served, axe_check, screenshot, sign_in_page
from sijill.api import create_app
from sijill.core.db import session_factory
from sijill.security.principal import Grant, Principal
from sijill.targeting.jobs import MPI_JOB, MpiParams
from test_web_programs import DAY, country, world  # noqa: F401  (fixtures)
from web_support import web_user

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING, allow_module_level=True)
pytest.importorskip("playwright.sync_api")
pytest.importorskip("axe_playwright_python.sync_playwright")


def test_targeting_audit_totals_and_password_pages(browser, world):  # noqa: F811
    app = create_app(world["settings"])
    officer = Principal("officer", (Grant("program_officer", None),))
    run = app.state.jobs.run(MPI_JOB, MpiParams(None, DAY, None, None), officer)
    web_user(session_factory(world["engine"]), "nadia", "auditor")
    web_user(session_factory(world["engine"]), "samir", "administrator")
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    page = context.new_page()
    pages = {
        "targeting": "/web/targeting",
        "features": "/web/targeting/features",
        "models": "/web/targeting/models",
        "mpi-run": f"/web/targeting/runs/{run.run_id}",
        "audit": "/web/audit",
        "totals": "/web/payments/totals",
        "ledger": "/web/payments/ledger",
        "password": "/web/password",
    }
    with Served(app) as served:
        base = served.url
        answer = page.goto(f"{base}/web/password")
        assert answer.status == 200
        axe_check(page, "password, signed out")
        sign_in_page(page, base, "samir")
        page.get_by_role("link", name="Targeting").click()
        page.wait_for_url(f"{base}/web/targeting")
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
                if name in {"targeting", "mpi-run"}:
                    screenshot(page, f"{name}-{language}")
            # The MPI's figures sit in their tiles, each indicator in its row.
            page.goto(f"{base}/web/targeting/runs/{run.run_id}")
            assert page.locator("#indicators tbody tr").count() >= 6
            assert page.locator("#mpi-h bdi").count() == 1
    context.close()
