"""Debian's chromium, launched the one way the tests and `scripts/screenshots.py` use it."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from playwright.async_api import Browser, BrowserContext, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MISSING = (
    f"{CHROMIUM} is missing: the browser tests need Debian's chromium. "
    "`bash scripts/test.sh` installs it (apt-get install --no-install-recommends chromium); "
    "install it by hand, or run that script as root or with sudo."
)

# The `new_context` fixture: `await new_context(width, height)` gives a fresh profile.
NewContext = Callable[..., Awaitable[BrowserContext]]


def chromium_installed() -> bool:
    return os.access(CHROMIUM, os.X_OK)


async def launch(playwright: Playwright) -> Browser:
    """Headless Debian chromium (never a browser `playwright install` downloaded)."""
    return await playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
