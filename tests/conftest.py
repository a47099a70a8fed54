"""Shared fixtures: a real server per test on a fresh SQLite file, and contract clients.

Every test that uses `live` ends with the ledger audited: it must still balance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.client import Api
from tests.support.fixtures import audited_api, running_server
from tests.support.live import LiveServer


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    """Override in a test module, or parametrize (directly or `indirect=True`), to run the
    server with other limits."""
    param = getattr(request, "param", None)
    return dict(param) if param else {}


@pytest.fixture
async def live(tmp_path: Path, settings_overrides: dict[str, object]) -> AsyncIterator[LiveServer]:
    async with running_server(tmp_path / "data", settings_overrides) as server:
        yield server


@pytest.fixture
async def api(live: LiveServer) -> AsyncIterator[Api]:
    async with audited_api(live) as client:
        yield client
