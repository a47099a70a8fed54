"""Test clients written against the wire contract: HTTP through httpx, rooms through websockets."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from tests.support.live import ADMIN_TOKEN

_names = itertools.count(1)


@dataclass(frozen=True)
class User:
    id: int
    name: str
    token: str


class Api:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.ws_base = base_url.replace("http://", "ws://")
        self.http = httpx.AsyncClient(base_url=base_url, timeout=10)

    async def close(self) -> None:
        await self.http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if json is not None:
            content = orjson.dumps(json)
            sent.setdefault("Content-Type", "application/json")
        return await self.http.request(method, path, content=content, headers=sent)

    async def signup(self, name: str | None = None, birthdate: str = "1990-01-01") -> User:
        name = name or f"user{next(_names)}_{uuid.uuid4().hex[:6]}"
        r = await self.call("POST", "/api/users", json={"name": name, "birthdate": birthdate})
        assert r.status_code == 201, r.text
        doc = r.json()
        return User(doc["id"], doc["name"], doc["token"])

    async def me(self, user: User) -> dict[str, Any]:
        r = await self.call("GET", "/api/me", user.token)
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        return doc

    async def recharge(
        self, user: User, package_id: str = "coins_330", key: str | None = None
    ) -> dict[str, Any]:
        r = await self.call(
            "POST",
            "/api/wallet/recharge",
            user.token,
            json={"package_id": package_id},
            headers={"Idempotency-Key": key or uuid.uuid4().hex},
        )
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        return doc

    async def go_live(self, host: User, title: str = "my live") -> dict[str, Any]:
        r = await self.call("POST", "/api/rooms", host.token, json={"title": title})
        assert r.status_code == 201, r.text
        doc: dict[str, Any] = r.json()
        return doc

    async def audit(self) -> dict[str, Any]:
        r = await self.call("GET", "/api/admin/audit", ADMIN_TOKEN)
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        return doc

    @asynccontextmanager
    async def room(
        self, room_id: int, token: str, since: int | None = None, overlay: bool = False
    ) -> AsyncIterator[Socket]:
        kind = "overlay" if overlay else "rooms"
        url = f"{self.ws_base}/ws/{kind}/{room_id}?token={token}"
        if since is not None:
            url += f"&since={since}"
        async with connect(url, compression=None, max_size=2**24) as ws:
            yield Socket(ws)


@dataclass
class Socket:
    """A room socket that flattens `batch` frames into single messages, in order."""

    ws: ClientConnection
    backlog: list[dict[str, Any]] = field(default_factory=list)
    frames: int = 0

    async def send(self, doc: Any) -> None:
        await self.ws.send(orjson.dumps(doc).decode())

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        while not self.backlog:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
            assert isinstance(raw, str), "the server must send text frames"
            self.frames += 1
            doc = orjson.loads(raw)
            if doc.get("type") == "batch":
                self.backlog.extend(doc["events"])
            else:
                self.backlog.append(doc)
        return self.backlog.pop(0)

    async def recv_type(self, *types: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next message of one of `types`, skipping others (viewers, top, goal...)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            doc = await self.recv(max(0.01, deadline - loop.time()))
            if doc.get("type") in types:
                return doc

    async def gift(
        self, request_id: str, gift_id: str = "rose", count: int = 1, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Send a gift and return its answer (`gift_ok` or `error` with this id)."""
        await self.send({"type": "gift", "id": request_id, "gift_id": gift_id, "count": count})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        skipped: list[dict[str, Any]] = []
        try:
            while True:
                doc = await self.recv(max(0.01, deadline - loop.time()))
                if doc.get("type") in ("gift_ok", "error") and doc.get("id") == request_id:
                    return doc
                skipped.append(doc)
        finally:
            self.backlog[:0] = skipped

    async def closed(self, timeout: float = 5.0) -> tuple[int | None, str]:
        """Wait for the server to close; returns (code, reason)."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        except Exception:
            pass
        await asyncio.wait_for(self.ws.wait_closed(), timeout)
        rcvd = self.ws.protocol.close_rcvd
        return (rcvd.code, rcvd.reason) if rcvd is not None else (None, "")
