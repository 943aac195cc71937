"""Playground test fixtures: a live server on tiny-wan, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, Playwright, sync_playwright

from tests.live_server import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
# Playwright cannot download its own browser here: it drives the system Chromium, which must not phone home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEY = "playground:s3cret"


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``framecast serve`` with one worker on tiny-wan; no API keys (loopback)."""
    with LiveServer(tmp_path_factory.mktemp("playground-server")) as live:
        live.wait_ready()
        yield live


@pytest.fixture(scope="package")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``framecast serve`` with an API key and no worker: requests stay queued."""
    data = tmp_path_factory.mktemp("playground-auth-server")
    with LiveServer(data, env={"FRAMECAST_API_KEYS": KEY}, args=("--workers", "0")) as live:
        live.wait_ready()
        yield live


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # No skip: a machine that cannot start Chromium fails these tests (tests/setup_system.sh installs it).
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run tests/setup_system.sh (apt-get install chromium)"
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Console:
    """Every console error and uncaught exception of a page. A test declares the HTTP errors it provokes."""

    errors: list[str] = field(default_factory=list)

    def on_message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} [{message.location.get('url', '')}]")

    def on_page_error(self, error: Error) -> None:
        self.errors.append(f"uncaught: {error}")

    def expect_http_error(self, status: int, path: str) -> None:
        """Chromium logs every failed fetch; remove the one a test caused on purpose, and require it."""
        pattern = re.compile(
            rf"^Failed to load resource: the server responded with a status of {status}\b.*{re.escape(path)}"
        )
        matching = [e for e in self.errors if pattern.search(e)]
        assert matching, f"expected a {status} from {path} in the console, got {self.errors}"
        self.errors.remove(matching[0])


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    """A fresh browser context (empty localStorage) per test; any unexpected console error fails it."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.on("console", console.on_message)
    page.on("pageerror", console.on_page_error)
    yield page
    context.close()
    assert console.errors == [], f"console errors: {console.errors}"
