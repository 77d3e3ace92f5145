"""Real Chromium (Debian's /usr/bin/chromium, driven by Playwright's sync API) against a real
`chat-server` process with the embedded database: one server and one browser for the whole
browser test module (module scope, not session: Playwright's sync API keeps its event loop
marked as running until it stops, which would break the pytest-asyncio tests that run after),
and a fresh browser context (own localStorage) per test. CHROMIUM=/path overrides the browser.

Every page fails its test on a console error, an uncaught exception, a failed request, a 5xx
response or a JavaScript dialog, except the exact HTTP failures a test declares beforehand
with `ui.expect_http_error(...)`. Each test saves numbered screenshots under
test-artifacts/screenshots/<test-name>/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import DESKTOP, UI, Api
from tests.server_process import REPO_ROOT, ServerProcess

try:
    from playwright.sync_api import Browser, Playwright, expect, sync_playwright
except ImportError:  # the dev extra installs it; without it the browser tests are skipped
    sync_playwright = None  # type: ignore[assignment]

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
TIMEOUT_MS = 10_000

if sync_playwright is not None:
    expect.set_options(timeout=TIMEOUT_MS)


_screenshots_taken: list[Path] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _screenshots_taken:
        terminalreporter.write_line(f"browser screenshots: {SCREENSHOTS}")


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    if sync_playwright is None:
        pytest.skip("the playwright package is not installed: pip install -e '.[dev]'")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found: install Chromium with `make browser-deps` (apt-get install chromium)")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    browser = playwright_instance.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("browser-server") / "data").start()
    yield process
    try:
        process.stop()
    except Exception:
        process.kill()
        raise


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[Api]:
    client = Api(server.base_url)
    yield client
    client.http.close()


@pytest.fixture
def make_ui(browser: Browser, server: ServerProcess, request: pytest.FixtureRequest) -> Iterator[Callable[..., UI]]:
    """make_ui(viewport=DESKTOP, color_scheme="light") -> UI on a fresh context."""
    contexts = []
    uis: list[UI] = []
    folder = SCREENSHOTS / re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    _screenshots_taken.append(folder)

    def make(viewport: dict[str, int] = DESKTOP, color_scheme: str = "light") -> UI:
        context = browser.new_context(
            viewport=viewport,  # type: ignore[arg-type]
            color_scheme=color_scheme,  # type: ignore[arg-type]
            has_touch=viewport["width"] < 500,
            is_mobile=False,
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        ui = UI(page, server.base_url, folder, mobile=viewport["width"] < 760)
        page.on("console", ui.on_console)
        page.on("pageerror", lambda error: ui.problems.append(f"uncaught exception: {error}"))
        page.on("requestfailed", ui.on_request_failed)
        page.on("response", ui.on_response)
        page.on("dialog", ui.on_dialog)
        uis.append(ui)
        return ui

    yield make
    print(f"\nscreenshots: {folder}")
    for context in contexts:
        context.close()
    for ui in uis:
        ui.assert_clean()
