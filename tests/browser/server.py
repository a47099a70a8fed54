"""The server's word on what the pages show, over HTTP, as the user the page is signed in as."""

from __future__ import annotations

from typing import Any

from tests.support.client import Api


async def _get(api: Api, path: str, token: str | None = None) -> dict[str, Any]:
    r = await api.call("GET", path, token)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


async def me(api: Api, token: str) -> dict[str, Any]:
    return await _get(api, "/api/me", token)


async def ledger(api: Api, token: str) -> list[tuple[str, str | None, int]]:
    """The caller's transactions, newest first, as (kind, gift id, coins)."""
    items = (await _get(api, "/api/wallet/transactions?limit=100", token))["items"]
    return [(t["kind"], t.get("gift_id"), t["coins"]) for t in items]


async def room_seq(api: Api, room_id: int) -> int:
    seq: int = (await _get(api, f"/api/rooms/{room_id}"))["seq"]
    return seq


async def limits(api: Api, token: str) -> dict[str, Any]:
    return await _get(api, "/api/wallet/limits", token)


async def payouts(api: Api, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await _get(api, "/api/payouts", token))["items"]
    return items
