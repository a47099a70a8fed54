"""Refunds of accidental purchases: own recharge, within 48 h, coins unspent, once."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

from tests.support.client import Api, User


async def refund(api: Api, user: User, recharge: Any, key: str | None = None) -> httpx.Response:
    return await api.call(
        "POST",
        "/api/wallet/refunds",
        user.token,
        json={"transaction_id": recharge},
        headers={"Idempotency-Key": key or uuid.uuid4().hex},
    )


def code(r: httpx.Response) -> str:
    return str(r.json()["error"]["code"])


async def test_a_viewer_buys_330_coins_by_mistake_and_gets_them_refunded(api: Api) -> None:
    viewer = await api.signup()
    bought = await api.recharge(viewer, "coins_330")
    r = await refund(api, viewer, bought["transaction_id"])
    assert r.status_code == 200, r.text
    assert r.json()["coins"] == 0 and r.json()["refund_of"] == bought["transaction_id"]
    assert (await api.me(viewer))["coins"] == 0
    items = (await api.call("GET", "/api/wallet/transactions", viewer.token)).json()["items"]
    assert [(i["kind"], i["coins"]) for i in items] == [("refund", -330), ("recharge", 330)]
    audit = await api.audit()
    assert audit["totals"]["coin"]["refunded"] == 330 and audit["balanced"]


async def test_a_second_refund_of_the_same_recharge_is_refused(api: Api) -> None:
    viewer = await api.signup()
    bought = await api.recharge(viewer, "coins_65")
    await api.recharge(viewer, "coins_65")
    assert (await refund(api, viewer, bought["transaction_id"])).status_code == 200
    again = await refund(api, viewer, bought["transaction_id"])
    assert again.status_code == 409 and code(again) == "already_refunded"
    assert (await api.me(viewer))["coins"] == 65


async def test_spent_coins_cannot_be_refunded(api: Api) -> None:
    host, viewer = await api.signup(), await api.signup()
    bought = await api.recharge(viewer, "coins_65")
    room = await api.go_live(host)
    async with api.room(room["id"], viewer.token) as ws:
        await ws.recv_type("welcome")
        assert (await ws.gift("one", "rose", 1))["type"] == "gift_ok"
    r = await refund(api, viewer, bought["transaction_id"])
    assert r.status_code == 422 and code(r) == "coins_already_spent"
    assert "you have 64" in r.json()["error"]["message"]
    assert (await api.me(viewer))["coins"] == 64


@pytest.mark.parametrize("settings_overrides", [{"refund_window_ms": 50}], indirect=True)
async def test_after_the_window_a_recharge_cannot_be_refunded(api: Api) -> None:
    viewer = await api.signup()
    bought = await api.recharge(viewer, "coins_65")
    await asyncio.sleep(0.1)
    r = await refund(api, viewer, bought["transaction_id"])
    assert r.status_code == 422 and code(r) == "refund_window_closed"
    assert (await api.me(viewer))["coins"] == 65


async def test_only_your_own_recharges_can_be_refunded(api: Api) -> None:
    host, alice, bob = await api.signup(), await api.signup(), await api.signup()
    bought = await api.recharge(alice, "coins_330")
    room = await api.go_live(host)
    async with api.room(room["id"], alice.token) as ws:
        await ws.recv_type("welcome")
        gift = await ws.gift("g", "rose", 1)
    gifts = (await api.call("GET", "/api/wallet/transactions", alice.token)).json()["items"]
    gift_id = next(i["id"] for i in gifts if i["kind"] == "gift_sent")
    for who, what in [(bob, bought["transaction_id"]), (alice, gift_id), (alice, 10**9)]:
        r = await refund(api, who, what)
        assert r.status_code == 404 and code(r) == "not_found", (what, r.text)
    assert gift["type"] == "gift_ok"
    assert (await api.me(alice))["coins"] == 329


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"transaction_id": "1"},
        {"transaction_id": 1.0},
        {"transaction_id": -1},
        {"transaction_id": True},
        [],
    ],
)
async def test_a_malformed_refund_is_invalid(api: Api, body: Any) -> None:
    viewer = await api.signup()
    r = await api.call(
        "POST", "/api/wallet/refunds", viewer.token, json=body, headers={"Idempotency-Key": "k"}
    )
    assert r.status_code == 400 and code(r) == "invalid"


async def test_refunds_follow_the_idempotency_rules(api: Api) -> None:
    viewer = await api.signup()
    first = await api.recharge(viewer, "coins_65")
    second = await api.recharge(viewer, "coins_330")
    r1 = await refund(api, viewer, first["transaction_id"], key="undo-1")
    r2 = await refund(api, viewer, first["transaction_id"], key="undo-1")
    assert r1.status_code == r2.status_code == 200 and r1.content == r2.content
    conflict = await refund(api, viewer, second["transaction_id"], key="undo-1")
    assert conflict.status_code == 409 and code(conflict) == "idempotency_conflict"
    missing = await api.call(
        "POST", "/api/wallet/refunds", viewer.token, json={"transaction_id": 1}
    )
    assert missing.status_code == 400 and code(missing) == "idempotency_key_required"
    assert (await api.me(viewer))["coins"] == 330


async def test_racing_refunds_of_one_recharge_refund_it_once(api: Api) -> None:
    viewer = await api.signup()
    bought = await api.recharge(viewer, "coins_1321")
    await api.recharge(viewer, "coins_1321")
    answers = await asyncio.gather(
        *(refund(api, viewer, bought["transaction_id"]) for _ in range(8))
    )
    assert sorted(r.status_code for r in answers) == [200] + [409] * 7
    assert (await api.me(viewer))["coins"] == 1321


@pytest.mark.parametrize(
    "settings_overrides", [{"gift_rate_per_s": 1000, "gift_burst": 1000}], indirect=True
)
async def test_a_refund_racing_a_gift_for_the_same_coins_lets_only_one_through(api: Api) -> None:
    host, viewer = await api.signup(), await api.signup()
    bought = await api.recharge(viewer, "coins_65")
    room = await api.go_live(host)
    async with api.room(room["id"], viewer.token) as ws:
        await ws.recv_type("welcome")
        await ws.send({"type": "gift", "id": "all-in", "gift_id": "rose", "count": 65})
        r = await refund(api, viewer, bought["transaction_id"])
        answer = await ws.recv_type("gift_ok", "error")
    gift_went_through = answer["type"] == "gift_ok"
    refund_went_through = r.status_code == 200
    assert gift_went_through != refund_went_through, (answer, r.text)
    if not refund_went_through:
        assert code(r) == "coins_already_spent"
    else:
        assert answer["code"] == "insufficient_coins"
    assert (await api.me(viewer))["coins"] == 0


async def test_the_history_links_a_refund_and_its_recharge_and_dates_the_window(
    api: Api,
) -> None:
    viewer = await api.signup()
    kept = await api.recharge(viewer, "coins_65")
    bought = await api.recharge(viewer, "coins_330")
    r = await refund(api, viewer, bought["transaction_id"])
    assert r.status_code == 200, r.text
    doc = (await api.call("GET", "/api/wallet/transactions", viewer.token)).json()
    undo, refunded, still = doc["items"]
    assert undo["kind"] == "refund" and undo["refund_of"] == bought["transaction_id"]
    assert refunded["id"] == bought["transaction_id"]
    assert refunded["refunded_by"] == r.json()["transaction_id"] == undo["id"]
    assert still["id"] == kept["transaction_id"] and still["refunded_by"] is None
    for recharge in (refunded, still):
        at = dt.datetime.fromisoformat(recharge["at"])
        until = dt.datetime.fromisoformat(recharge["refundable_until"])
        assert until - at == dt.timedelta(hours=48), recharge
