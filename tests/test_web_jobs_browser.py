"""The import page in Chromium: a registrar opens it from the nav, uploads a small file, lands
on its job's page and, once the job has ended, reads its counts in English and in Arabic
(right to left). axe-core on the form and the job's page in both languages; screenshots
import-job-en and import-job-ar."""

import pytest

from browser_support import CHROMIUM_MISSING, Served, axe_check, screenshot, sign_in_page
from sijill.api import create_app
from sijill.jobs.service import wait_for_end
from test_jobs import flat_list
from test_web_jobs import world  # noqa: F401  (the fixture)

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING, allow_module_level=True)
pytest.importorskip("playwright.sync_api")
pytest.importorskip("axe_playwright_python.sync_playwright")


def test_upload_a_file_and_follow_its_job(browser, world, tmp_path):  # noqa: F811
    listed = tmp_path / "households.csv"
    listed.write_bytes(flat_list(3, bad_sex_in=1))
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    page = context.new_page()
    app = create_app(world["settings"])
    with Served(app) as served:
        base = served.url
        sign_in_page(page, base, "clerk")
        page.locator("#nav").get_by_role("link", name="Import", exact=True).click()
        page.wait_for_url(f"{base}/web/imports")
        axe_check(page, "import form (en)")
        page.get_by_label("File: CSV, XLSX or Parquet").set_input_files(str(listed))
        page.locator("form.stacked button[type=submit]").click()
        page.wait_for_url(f"{base}/web/jobs/*")
        job_id = page.url.rsplit("/", 1)[1]
        assert wait_for_end(int(job_id), 120), "the job did not end"
        page.reload()
        assert page.locator("#job-state").text_content() == "Finished"
        assert page.get_by_role("link", name="Download the rejected rows").count() == 1
        assert page.locator("meta[http-equiv=refresh]").count() == 0
        axe_check(page, "job (en)")
        screenshot(page, "import-job-en")

        page.get_by_role("link", name="العربية").click()
        page.wait_for_function("document.documentElement.dir === 'rtl'")
        assert page.url == f"{base}/web/jobs/{job_id}"
        assert page.locator("table[aria-labelledby=outcome] tr").count() >= 10
        axe_check(page, "job (ar)")
        screenshot(page, "import-job-ar")
        page.goto(f"{base}/web/imports")
        axe_check(page, "import form (ar)")
    context.close()
