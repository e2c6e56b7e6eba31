"""The linkage review pages in Chromium: a reviewer opens the queue, opens a pair, sees what
differs marked (shaded and in words), reads it in Arabic (right to left, the table mirrored),
decides, and is back on the queue with the decision said. axe-core on the queue and the pair
in English and Arabic; screenshots review-pair-en and review-pair-ar."""

import re

import pytest

from browser_support import CHROMIUM_MISSING, Served, axe_check, screenshot, sign_in_page
from sijill.api import create_app
from test_web_review import world  # noqa: F401  (the fixture)

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING, allow_module_level=True)
pytest.importorskip("playwright.sync_api")
pytest.importorskip("axe_playwright_python.sync_playwright")


def test_review_a_pair_in_english_and_arabic(browser, settings, world):  # noqa: F811
    flag_id = world["scored"]
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    page = context.new_page()
    with Served(create_app(settings)) as served:
        base = served.url
        sign_in_page(page, base, "reviewer")
        page.locator("#nav").get_by_role("link", name="Review").click()
        page.wait_for_url(f"{base}/web/review")
        axe_check(page, "review queue (en)")
        page.get_by_role("link", name=f"Pair {flag_id}", exact=True).click()
        page.wait_for_url(f"{base}/web/review/{flag_id}")
        differing = page.locator("tr.differs")
        assert differing.count() == 3  # given name in Latin script, area, household
        assert page.locator("tr.differs[data-field=given_name_lat]").count() == 1
        # Marked in words too (read by a screen reader, not shown), beside the visible sign.
        assert page.locator("tr.differs .mark").first.is_visible()
        hidden_word = page.locator("tr.differs .vh").first
        assert hidden_word.text_content() == "differs:"
        assert hidden_word.bounding_box()["width"] <= 1
        axe_check(page, "review pair (en)")
        screenshot(page, "review-pair-en")
        header = page.locator("table.pair thead th")
        assert header.first.bounding_box()["x"] < header.last.bounding_box()["x"]

        page.get_by_role("link", name="العربية").click()
        page.wait_for_function("document.documentElement.dir === 'rtl'")
        assert page.url == f"{base}/web/review/{flag_id}"
        # Mirrored: the fields' column now starts on the right.
        assert header.first.bounding_box()["x"] > header.last.bounding_box()["x"]
        assert page.locator("tr.differs").count() == 3
        axe_check(page, "review pair (ar)")
        screenshot(page, "review-pair-ar")
        page.goto(f"{base}/web/review")
        axe_check(page, "review queue (ar)")
        page.goto(f"{base}/web/review/{flag_id}")

        # "Same person", whatever the language of the button's label.
        page.locator("form:has(input[value=same_person]) button[type=submit]").click()
        page.wait_for_url(re.compile(rf"{re.escape(base)}/web/review\?decided=same&merge=\d+"))
        page.get_by_role("status").wait_for()
        assert page.locator(f'a[href="/web/review/{flag_id}"]').count() == 0
        assert page.locator(f'a[href="/web/review/{world["shared"]}"]').count() == 1
    context.close()
