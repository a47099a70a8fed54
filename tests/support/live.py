"""A real giftcast server on 127.0.0.1 port 0, in the test's event loop, on a real SQLite file."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from server.config import Settings
from server.web.app import create_app
from server.web.runner import GiftcastServer, uvicorn_config
from server.web.runtime import Runtime

ADMIN_TOKEN = "test-admin-token"


def test_settings(data_dir: Path, **overrides: object) -> Settings:
    base = Settings(
        host="127.0.0.1",
        port=0,
        data_dir=str(data_dir),
        admin_token=ADMIN_TOKEN,
        secret="test-secret",
        log_level="warning",
    )
    return base.replace(**overrides)


@dataclass
class LiveServer:
    settings: Settings
    server: GiftcastServer
    task: asyncio.Task[None]

    @property
    def port(self) -> int:
        return self.server.bound_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.server.app.state.runtime
        return runtime

    @classmethod
    async def start(cls, settings: Settings) -> LiveServer:
        app = create_app(settings)
        server = GiftcastServer(uvicorn_config(settings, app), settings, app, signals=False)
        task = asyncio.create_task(server.serve())
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            if task.done():
                task.result()
            raise RuntimeError("the server did not start in 5 s")
        return cls(settings, server, task)

    async def drain(self) -> None:
        """What SIGTERM does: drain, then stop."""
        await self.server.begin_drain()
        await asyncio.wait_for(self.task, 15)

    async def stop(self) -> None:
        if not self.task.done():
            self.server.should_exit = True
            await asyncio.wait_for(self.task, 15)
