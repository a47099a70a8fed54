"""Browser fixtures: one headless Debian Chromium for the session, a fresh context per use.

The browser is Debian's `chromium` at /usr/bin/chromium (`bash scripts/test.sh` installs it
when it is missing), driven by Playwright's own driver; `playwright install` is never used.
Without it these tests fail, loudly, in CI and everywhere else: they are never skipped.

Playwright's connection belongs to the event loop that started it, so every test in this
folder runs in the session's loop, and `live` and `api` are defined again here, in that loop.
Each test still gets its own server on a fresh SQLite file, and its ledger is audited after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Error, async_playwright, expect

from tests.browser.chromium import MISSING, NewContext, chromium_installed, launch
from tests.support.client import Api
from tests.support.fixtures import audited_api, running_server
from tests.support.live import LiveServer

HERE = Path(__file__).resolve().parent

# Generous: a loaded 2-core CI machine is slow, and `expect` returns as soon as it holds.
expect.set_options(timeout=20_000)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run this folder's tests in the session's event loop, where the browser lives."""
    in_session_loop = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(in_session_loop, append=False)


@pytest_asyncio.fixture(loop_scope="session")
async def live(tmp_path: Path, settings_overrides: dict[str, object]) -> AsyncIterator[LiveServer]:
    async with running_server(tmp_path / "data", settings_overrides) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def api(live: LiveServer) -> AsyncIterator[Api]:
    async with audited_api(live) as client:
        yield client


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not chromium_installed():
        pytest.fail(MISSING, pytrace=False)
    async with async_playwright() as playwright:
        launched = await launch(playwright)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="session")
async def new_context(browser: Browser, live: LiveServer) -> AsyncIterator[NewContext]:
    """`await new_context()`: a fresh browser profile (its own storage) on this test's server.

    Every page error (an exception nothing caught) in any of them fails the test.
    """
    contexts: list[BrowserContext] = []
    page_errors: list[str] = []

    def on_page_error(error: Error) -> None:
        page_errors.append(f"{error.name}: {error.message}\n{error.stack}")

    async def make(width: int = 1280, height: int = 800) -> BrowserContext:
        context = await browser.new_context(
            base_url=live.url,
            viewport={"width": width, "height": height},
            locale="en-US",
            timezone_id="UTC",
        )
        context.on("weberror", lambda web_error: on_page_error(web_error.error))
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()
    assert not page_errors, "uncaught errors in the pages:\n" + "\n".join(page_errors)
