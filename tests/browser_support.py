"""What the browser tests share: Debian's Chromium (no browser download), the app served by
uvicorn on a socket bound before it starts, axe-core checks, screenshots, signing in.

A browser test module starts with

    from browser_support import CHROMIUM_MISSING, Served, axe_check, screenshot, sign_in_page
    if CHROMIUM_MISSING:
        pytest.skip(CHROMIUM_MISSING, allow_module_level=True)

and uses the `browser` fixture of conftest.py (one Chromium per module)."""

import socket
import threading
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from web_support import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent.parent / "test-screenshots"
SEVERE = {"serious", "critical"}
CHROMIUM_MISSING = (
    None if CHROMIUM.exists() else f"Chromium not found at {CHROMIUM}: apt-get install chromium"
)


@contextmanager
def launch():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        print(f"\nbrowser: Chromium {chromium.version} ({CHROMIUM}), Playwright")
        try:
            yield chromium
        finally:
            chromium.close()


class Served:
    """The app served by uvicorn in a thread, on a socket bound before it starts: a request
    waits in the socket's queue until the server answers, so nothing needs a pause."""

    def __init__(self, app):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(128)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, args=([self.socket],))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join()
        self.socket.close()


def axe_check(page, name: str) -> None:
    """axe-core on the page as it is: no serious or critical violation."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    severe = [v for v in results.response["violations"] if v["impact"] in SEVERE]
    assert not severe, f"{name}: " + "; ".join(f"{v['id']} ({v['impact']})" for v in severe)


def screenshot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in_page(page, base: str, username: str, then: str = "/web/households") -> None:
    page.goto(f"{base}/web/sign-in")
    page.get_by_label("User name").fill(username)
    page.locator("#password").fill(PASSWORD)
    page.locator("form.stacked button[type=submit]").click()
    page.wait_for_url(f"{base}{then}")
