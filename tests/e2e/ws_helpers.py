"""Helpers for the room and overlay WebSocket tests: staging a room, refusals, event checks.

Everything here talks to a real server through the contract clients of `tests.support`;
nothing reaches into the server except `expired_token`, which signs a token the way the
server would have signed it an hour ago (there is no other way to hold an expired one).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from server.domain.money import UserId
from server.domain.tokens import issue_user_token
from tests.support.client import Api, Socket, User
from tests.support.live import LiveServer

Doc = dict[str, Any]

NUMBERED = ("gift", "streak_end", "room_ended")
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
CATALOG = {
    "rose": ("Rose", 1, True, "small"),
    "finger_heart": ("Finger Heart", 5, True, "small"),
    "doughnut": ("Doughnut", 30, True, "small"),
    "confetti": ("Confetti", 100, False, "medium"),
}


def with_settings(**overrides: object) -> pytest.MarkDecorator:
    """Run the decorated test against a server with these `Settings` values."""
    return pytest.mark.parametrize("settings_overrides", [overrides], ids=["settings"])


def minor_birthdate() -> str:
    """A birthdate that makes its owner 17 today (UTC)."""
    today = dt.datetime.now(dt.UTC).date()
    return dt.date(today.year - 17, 1, 1).isoformat()


def expired_token(live: LiveServer, user: User) -> str:
    """A token for `user`, correctly signed with the server's secret, that expired 1 h ago."""
    now_s = int(time.time())
    return issue_user_token(live.settings.secret.encode(), UserId(user.id), now_s - 7200, 3600)


# --- staging ------------------------------------------------------------------------------


@dataclass
class Stage:
    """A live room: its host, the room document from `POST /api/rooms`, and some viewers."""

    host: User
    room: Doc
    viewers: list[User] = field(default_factory=list)

    @property
    def id(self) -> int:
        room_id: int = self.room["id"]
        return room_id

    @property
    def overlay_token(self) -> str:
        token: str = self.room["overlay_token"]
        return token


async def stage(
    api: Api, viewers: Iterable[str] = ("alice",), package: str | None = "coins_330"
) -> Stage:
    """A host live in a fresh room, and one signed-up viewer per name (recharged if asked)."""
    host = await api.signup("host")
    room = await api.go_live(host, "the late show")
    users = []
    for name in viewers:
        user = await api.signup(name)
        if package is not None:
            await api.recharge(user, package)
        users.append(user)
    return Stage(host, room, users)


def room_url(api: Api, room_id: int | str, token: str | None, **query: str | int) -> str:
    url = f"{api.ws_base}/ws/rooms/{room_id}"
    params = dict(query)
    if token is not None:
        params = {"token": token, **params}
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return url


def overlay_url(api: Api, room_id: int | str, token: str | None) -> str:
    url = f"{api.ws_base}/ws/overlay/{room_id}"
    return url if token is None else f"{url}?token={token}"


# --- refusals -----------------------------------------------------------------------------


async def refusal_code(url: str, origin: str | None = None, timeout: float = 5.0) -> int | None:
    """Connect and return the close code, asserting the server sent nothing before it."""
    async with connect(url, compression=None, origin=Origin(origin) if origin else None) as ws:
        try:
            message = await asyncio.wait_for(ws.recv(), timeout)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None
        raise AssertionError(f"expected a refusal before any message, got {message!r}")


async def accepted(url: str, origin: str | None = None) -> Doc:
    """Connect and return the first message, which must be the welcome."""
    async with connect(url, compression=None, origin=Origin(origin) if origin else None) as ws:
        sock = Socket(ws)
        welcome = await sock.recv()
        assert welcome["type"] == "welcome", welcome
        return welcome


# --- reading ------------------------------------------------------------------------------


async def assert_open(sock: Socket) -> None:
    """The socket still answers: a ping gets its pong."""
    await sock.send({"type": "ping"})
    await sock.recv_type("pong")


async def welcome(sock: Socket) -> Doc:
    doc = await sock.recv()
    assert doc["type"] == "welcome", doc
    return doc


async def until(sock: Socket, done: Callable[[Doc], bool], timeout: float = 5.0) -> list[Doc]:
    """Every message up to and including the first one `done` accepts."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen: list[Doc] = []
    while True:
        try:
            doc = await sock.recv(max(0.01, deadline - loop.time()))
        except TimeoutError:
            raise AssertionError(f"timed out; saw {seen!r}") from None
        seen.append(doc)
        if done(doc):
            return seen


async def numbered(sock: Socket, count: int, timeout: float = 5.0) -> list[Doc]:
    """The next `count` numbered room events (gift, streak_end, room_ended), others skipped."""
    return [await sock.recv_type(*NUMBERED, timeout=timeout) for _ in range(count)]


async def until_seq(sock: Socket, seq: int, timeout: float = 5.0) -> list[Doc]:
    """Numbered events up to and including `seq`."""
    seen = await until(sock, lambda d: d.get("type") in NUMBERED and d["seq"] >= seq, timeout)
    return [d for d in seen if d.get("type") in NUMBERED]


async def until_closed(sock: Socket, timeout: float = 5.0) -> tuple[list[Doc], int | None]:
    """Every message until the server closes the socket, and the close code."""
    seen: list[Doc] = []
    try:
        while True:
            seen.append(await sock.recv(timeout))
    except ConnectionClosed:
        pass
    code, _ = await sock.closed(timeout)
    return seen, code


def assert_contiguous(events: list[Doc], after: int) -> None:
    """Numbered events rise by exactly one from `after + 1`: no gap, no repeat."""
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(after + 1, after + 1 + len(seqs))), seqs


def assert_error(doc: Doc, code: str, request_id: str | None) -> None:
    assert doc["type"] == "error", doc
    assert doc["code"] == code, doc
    assert isinstance(doc["message"], str) and doc["message"], doc
    if request_id is not None:
        assert doc["id"] == request_id, doc


def assert_gift_ok(doc: Doc, request_id: str, coins_spent: int, balance: int) -> None:
    assert doc["type"] == "gift_ok", doc
    assert {"type", "id", "seq", "coins", "coins_spent", "diamonds"} <= doc.keys(), doc
    assert doc["id"] == request_id
    assert type(doc["seq"]) is int and doc["seq"] >= 1
    assert doc["coins_spent"] == coins_spent
    assert doc["diamonds"] == coins_spent  # diamonds_per_coin is 1 by default
    assert doc["coins"] == balance
    assert "duplicate" not in doc or doc["duplicate"] is False


def assert_gift_event(
    doc: Doc, sender: User, gift_id: str, count: int, first: bool | None = None
) -> None:
    """A room `gift` event with every field the contract names, for this send."""
    name, coins, streakable, animation = CATALOG[gift_id]
    assert doc["type"] == "gift", doc
    keys = {"seq", "at", "sender", "gift", "count", "coins", "diamonds", "streak", "shoutout"}
    assert keys | {"first"} <= doc.keys(), doc
    assert RFC3339_UTC.match(doc["at"]), doc["at"]
    assert doc["sender"] == {"id": sender.id, "name": sender.name}
    assert doc["gift"] == {"id": gift_id, "name": name, "coins": coins, "animation": animation}
    assert doc["count"] == count
    assert doc["coins"] == coins * count
    assert doc["diamonds"] == coins * count
    if streakable:
        streak = doc["streak"]
        assert set(streak) >= {"id", "total", "ended"} and streak["ended"] is False, doc
    else:
        assert doc["streak"] is None, doc
    assert doc["shoutout"].startswith(f"{sender.name} sent {name}"), doc
    if first is not None:
        assert doc["first"] is first, doc


# --- restarts -----------------------------------------------------------------------------


@asynccontextmanager
async def restarted(live: LiveServer) -> AsyncIterator[tuple[LiveServer, Api]]:
    """Stop `live` and start a new server on the same data dir (the audit runs at the end)."""
    await live.stop()
    server = await LiveServer.start(live.settings)
    api = Api(server.url)
    try:
        yield server, api
        if not server.runtime.stopping:
            report = await api.audit()
            assert report["balanced"], report
    finally:
        await api.close()
        await server.stop()
