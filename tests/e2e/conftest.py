"""Real-browser fixtures: the app served over HTTP on loopback, and Debian's Chromium
driven by Playwright."""

import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

import config
from leads import create_app
from tests.servers import free_port
from tests.staff_support import PASSWORD

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# Chromium on a closed network: no background traffic, no sandbox (CI runs as root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
OUTPUT_DIR = Path(__file__).resolve().parents[2] / "test-output"


class LiveServer:
    def __init__(self, app) -> None:
        self.app = app
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def _live_server(test_env):
    served = create_app(config.TestingConfig, WTF_CSRF_ENABLED=True, BASE_URL="http://placeholder")
    server = LiveServer(served)
    served.config["BASE_URL"] = server.url
    yield from _serve(server)


@pytest.fixture
def live_server(app, _live_server):
    """The app, with CSRF on as in production, served on a free loopback port."""
    yield from _with_settings_restored(_live_server)


@pytest.fixture(scope="session")
def _staff_server(test_env):
    served = create_app(config.TestingConfig, WTF_CSRF_ENABLED=True, LOGIN_RATE_LIMIT="500 per minute")
    yield from _serve(LiveServer(served))


@pytest.fixture
def staff_server(app, _staff_server):
    """The app over HTTP with CSRF on, as in production; its own login rate limit so the
    other browser tests' sign-ins from 127.0.0.1 do not count against these."""
    yield from _with_settings_restored(_staff_server)


def _serve(server: LiveServer):
    """Serve for the whole run: the served apps are built once, like the test app."""
    server.start()
    yield server
    server.stop()


def _with_settings_restored(server: LiveServer):
    """The server for one test; settings the test changes are put back afterwards."""
    settings = dict(server.app.config)
    yield server
    server.app.config.clear()
    server.app.config.update(settings)


def sign_in_staff(page, server, email: str, password: str = PASSWORD) -> None:
    """Sign in through the real login page and land on the queue."""
    page.goto(server.url + "/staff/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/staff/leads")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's chromium package (make test does on CI)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def phone_page(browser):
    """A 360 px wide phone screen."""
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def axe_violations(page, tags=("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")) -> list[str]:
    """axe-core's WCAG A/AA violations on the current page, one readable line each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": list(tags)}})
    return [
        f"{v['id']}: {v['help']} ({', '.join(n['target'][0] for n in v['nodes'][:3])})"
        for v in results.response["violations"]
    ]


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under test-output/ for a person to look at."""
    OUTPUT_DIR.mkdir(exist_ok=True)
    path = OUTPUT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
