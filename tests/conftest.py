"""Shared fixtures: a real server per test on a fresh SQLite file, and contract clients.

Every test that uses `live` ends with the ledger audited: it must still balance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.client import Api
from tests.support.live import LiveServer, test_settings


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    """Override in a test module, or parametrize (directly or `indirect=True`), to run the
    server with other limits."""
    param = getattr(request, "param", None)
    return dict(param) if param else {}


@pytest.fixture
async def live(tmp_path: Path, settings_overrides: dict[str, object]) -> AsyncIterator[LiveServer]:
    server = await LiveServer.start(test_settings(tmp_path / "data", **settings_overrides))
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def api(live: LiveServer) -> AsyncIterator[Api]:
    client = Api(live.url)
    try:
        yield client
        if not live.runtime.stopping:
            report = await client.audit()
            assert report["balanced"], report
    finally:
        await client.close()
