"""The bodies of the `live` and `api` fixtures, for every conftest that defines them.

`tests/conftest.py` defines them in each test's own event loop; `tests/browser/conftest.py`
defines them again in the session's loop, where the shared browser lives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from tests.support.client import Api
from tests.support.live import LiveServer, test_settings


@asynccontextmanager
async def running_server(
    data_dir: Path, overrides: Mapping[str, object]
) -> AsyncIterator[LiveServer]:
    """A real server on a fresh SQLite file under `data_dir`, stopped on the way out."""
    server = await LiveServer.start(test_settings(data_dir, **overrides))
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def audited_api(live: LiveServer) -> AsyncIterator[Api]:
    """A contract client; on the way out (unless the server is stopping) the ledger must balance."""
    client = Api(live.url)
    try:
        yield client
        if not live.runtime.stopping:
            report = await client.audit()
            assert report["balanced"], report
    finally:
        await client.close()
