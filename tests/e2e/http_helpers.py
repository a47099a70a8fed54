"""Shared assertions and small stories for the HTTP end-to-end tests (`test_http_*.py`).

Everything here talks to the server over real sockets through `tests.support.client.Api`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.support.client import Api, User
from tests.support.live import LiveServer, test_settings

# The error codes of the wire contract, and nothing else.
CONTRACT_CODES = frozenset(
    {
        "invalid",
        "unauthorized",
        "forbidden",
        "not_found",
        "name_taken",
        "insufficient_coins",
        "insufficient_diamonds",
        "unknown_gift",
        "unknown_package",
        "room_not_live",
        "self_gift",
        "age_restricted",
        "rate_limited",
        "spending_limit",
        "below_minimum",
        "refund_window_closed",
        "coins_already_spent",
        "already_refunded",
        "already_settled",
        "idempotency_conflict",
        "idempotency_key_required",
        "unavailable",
    }
)

# The packaged pages; the server serves `GET /` and `GET /overlay` from here.
CLIENT_DEMO = Path(__file__).resolve().parents[2] / "client_demo"

# RFC 3339 in UTC with a `Z`, as the contract writes it: "2026-11-24T12:00:00.123Z".
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")

ADULT_BIRTHDATE = "1990-01-01"

T = TypeVar("T")

# Validation tables have many cases that change nothing the next case could see. They share one
# server per module (a server start and stop costs ~0.2 s): decorate the test with
# `on_shared_server` and take the module's `shared_api` fixture (see `shared_server`).
on_shared_server = pytest.mark.asyncio(loop_scope="module")


@asynccontextmanager
async def shared_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    """One real server for a module's validation tables; its ledger is audited at the end."""
    live = await LiveServer.start(test_settings(tmp_path_factory.mktemp("shared") / "data"))
    api = Api(live.url)
    try:
        yield api
        report = await api.audit()
        assert report["balanced"], report
    finally:
        await api.close()
        await live.stop()


def describe(r: httpx.Response) -> str:
    return f"{r.request.method} {r.request.url.raw_path.decode()} -> {r.status_code} {r.text[:300]}"


def assert_error(r: httpx.Response, status: int, code: str | Sequence[str]) -> dict[str, Any]:
    """The response is `status` with the contract's error body carrying `code`; returns the error.

    The body is exactly `{"error": {"code": <a contract code>, "message": <non-empty string>}}`
    (the server may add fields inside `error`, e.g. `retry_after_ms`).
    """
    codes = (code,) if isinstance(code, str) else tuple(code)
    assert r.status_code == status, f"expected {status} {'/'.join(codes)}: {describe(r)}"
    assert r.headers.get("content-type", "").startswith("application/json"), describe(r)
    doc = r.json()
    assert isinstance(doc, dict) and isinstance(doc.get("error"), dict), describe(r)
    error: dict[str, Any] = doc["error"]
    assert error.get("code") in CONTRACT_CODES, f"not a contract code: {describe(r)}"
    assert error["code"] in codes, f"expected code {'/'.join(codes)}: {describe(r)}"
    message = error.get("message")
    assert isinstance(message, str) and message.strip(), f"empty message: {describe(r)}"
    return error


def ok_json(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The JSON object of a successful answer with `status`."""
    assert r.status_code == status, f"expected {status}: {describe(r)}"
    assert r.headers.get("content-type", "").startswith("application/json"), describe(r)
    doc = r.json()
    assert isinstance(doc, dict), describe(r)
    return doc


def assert_has_keys(doc: dict[str, Any], keys: set[str], what: str) -> None:
    missing = keys - set(doc)
    assert not missing, f"{what} lacks {sorted(missing)}: {doc}"


def is_int(value: object) -> bool:
    """An integer, and not a bool: money and ids on the wire."""
    return type(value) is int


def assert_no_floats(doc: object, where: str = "$") -> None:
    """No JSON number anywhere in `doc` is a float (money is always an integer)."""
    if isinstance(doc, float):
        raise AssertionError(f"{where} is a float: {doc!r}")
    if isinstance(doc, dict):
        for key, value in doc.items():
            assert_no_floats(value, f"{where}.{key}")
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            assert_no_floats(value, f"{where}[{i}]")


def parse_rfc3339_utc(value: object) -> dt.datetime:
    assert isinstance(value, str) and RFC3339_UTC.match(value), f"not RFC 3339 UTC: {value!r}"
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_recent(value: object, slack_s: float = 300) -> None:
    """An RFC 3339 UTC timestamp within a few minutes of now."""
    stamp = parse_rfc3339_utc(value)
    now = dt.datetime.now(dt.UTC)
    assert abs((now - stamp).total_seconds()) < slack_s, f"{value} is not close to {now}"


def today_utc() -> dt.date:
    """The server decides age by the UTC calendar date."""
    return dt.datetime.now(dt.UTC).date()


def years_ago(years: int, days: int = 0) -> str:
    """The date `years` years before today (UTC), then `days` later; YYYY-MM-DD.

    A 29 February with no counterpart that year falls back to 28 February (one day older).
    """
    today = today_utc()
    try:
        anniversary = today.replace(year=today.year - years)
    except ValueError:
        anniversary = today.replace(year=today.year - years, day=28)
    return (anniversary + dt.timedelta(days=days)).isoformat()


def new_key() -> str:
    return uuid.uuid4().hex


def unique_name(prefix: str = "u") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def sign_up_raw(api: Api, body: Any) -> httpx.Response:
    return await api.call("POST", "/api/users", json=body)


async def recharge_raw(
    api: Api, user: User, body: Any, key: str | None, extra: dict[str, str] | None = None
) -> httpx.Response:
    headers = dict(extra or {})
    if key is not None:
        headers["Idempotency-Key"] = key
    return await api.call("POST", "/api/wallet/recharge", user.token, json=body, headers=headers)


async def coins_of(api: Api, user: User) -> int:
    coins = (await api.me(user))["coins"]
    assert is_int(coins)
    return int(coins)


async def send_gifts(
    api: Api, room_id: int, sender: User, gifts: Sequence[tuple[str, int]]
) -> list[dict[str, Any]]:
    """`sender` joins the room's socket and sends each (gift id, count); every one is accepted."""
    answers: list[dict[str, Any]] = []
    async with api.room(room_id, sender.token) as ws:
        welcome = await ws.recv()
        assert welcome["type"] == "welcome", welcome
        for gift_id, count in gifts:
            answer = await ws.gift(new_key(), gift_id, count)
            assert answer["type"] == "gift_ok", answer
            answers.append(answer)
    return answers


async def funded_viewer(api: Api, package_id: str = "coins_330") -> User:
    viewer = await api.signup(unique_name("viewer"), ADULT_BIRTHDATE)
    await api.recharge(viewer, package_id)
    return viewer


async def eventually(
    probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float = 3.0
) -> T:
    """Poll `probe` until `check` holds on its value (for effects of a closing socket)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await probe()
        if check(value) or loop.time() > deadline:
            return value
        await asyncio.sleep(0.02)
