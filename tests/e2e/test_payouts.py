"""Creator payouts: reserve on request, settle once (paid, or failed and given back)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support.client import Api, User
from tests.support.live import ADMIN_TOKEN


async def earn(api: Api, host: User, gifts: list[tuple[str, int]]) -> None:
    """A viewer sends `host` these gifts in the host's new live, which then ends."""
    viewer = await api.signup()
    await api.recharge(viewer, "coins_6607")
    room = await api.go_live(host)
    async with api.room(room["id"], viewer.token) as ws:
        await ws.recv_type("welcome")
        for n, (gift, count) in enumerate(gifts):
            assert (await ws.gift(f"g{n}", gift, count))["type"] == "gift_ok"
    await api.call("POST", f"/api/rooms/{room['id']}/end", host.token)


async def cash_out(api: Api, host: User, diamonds: Any, key: str | None = None) -> httpx.Response:
    return await api.call(
        "POST",
        "/api/payouts",
        host.token,
        json={"diamonds": diamonds},
        headers={"Idempotency-Key": key or uuid.uuid4().hex},
    )


async def settle(api: Api, payout: int, outcome: Any, token: str = ADMIN_TOKEN) -> httpx.Response:
    return await api.call(
        "POST", f"/api/admin/payouts/{payout}/settle", token, json={"outcome": outcome}
    )


def code(r: httpx.Response) -> str:
    return str(r.json()["error"]["code"])


FOUR_THOUSAND_321 = [("galaxy", 4), ("corgi", 1), ("perfume", 1), ("rose", 2)]


async def test_a_creator_earns_4321_cashes_out_4000_the_payout_fails_and_the_diamonds_come_back(
    api: Api,
) -> None:
    host = await api.signup()
    await earn(api, host, FOUR_THOUSAND_321)
    assert (await api.me(host))["diamonds"] == 4321
    r = await cash_out(api, host, 4000)
    assert r.status_code == 202, r.text
    payout = r.json()
    assert payout == {**payout, "diamonds": 4000, "cents": 2000, "status": "pending"}
    assert (await api.me(host))["diamonds"] == 321  # reserved: no longer spendable
    audit = await api.audit()
    assert audit["balanced"] and audit["totals"]["diamond"]["reserved"] == 4000

    failed = await settle(api, payout["id"], "failed")
    assert failed.status_code == 200 and failed.json()["status"] == "failed"
    assert (await api.me(host))["diamonds"] == 4321
    items = (await api.call("GET", "/api/wallet/transactions", host.token)).json()["items"]
    assert [(i["kind"], i["diamonds"]) for i in items[:2]] == [
        ("payout_reversed", 4000),
        ("payout", -4000),
    ]
    again = await settle(api, payout["id"], "paid")
    assert again.status_code == 409 and code(again) == "already_settled"
    listed = (await api.call("GET", "/api/payouts", host.token)).json()["items"]
    assert [(p["id"], p["status"]) for p in listed] == [(payout["id"], "failed")]


async def test_a_paid_payout_leaves_for_good_and_only_whole_cents_are_paid(api: Api) -> None:
    host = await api.signup()
    await earn(api, host, [("galaxy", 2), ("rose", 1)])  # 2001 diamonds
    r = await cash_out(api, host, 2001)
    assert r.status_code == 202, r.text
    assert r.json()["diamonds"] == 2000 and r.json()["cents"] == 1000  # 1 diamond is half a cent
    paid = await settle(api, r.json()["id"], "paid")
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    assert "settled_at" in paid.json()
    assert (await api.me(host))["diamonds"] == 1
    audit = await api.audit()
    assert audit["balanced"]
    assert audit["totals"]["diamond"]["paid_out"] == 2000
    assert audit["totals"]["diamond"]["reserved"] == 0


async def test_payout_refusals(api: Api) -> None:
    host, minor = await api.signup(), await api.signup(birthdate="2015-01-01")
    await earn(api, host, [("galaxy", 2)])
    low = await cash_out(api, host, 1999)
    assert low.status_code == 422 and code(low) == "below_minimum"
    much = await cash_out(api, host, 5000)
    assert much.status_code == 422 and code(much) == "insufficient_diamonds"
    young = await cash_out(api, minor, 2000)
    assert young.status_code == 403 and code(young) == "age_restricted"
    for bad in ["2000", 2000.0, True, -5, None]:
        r = await cash_out(api, host, bad)
        assert r.status_code == 400 and code(r) == "invalid", bad
    assert (await api.me(host))["diamonds"] == 2000


async def test_payouts_follow_the_idempotency_rules(api: Api) -> None:
    host = await api.signup()
    await earn(api, host, [("galaxy", 5)])
    first = await cash_out(api, host, 2000, key="cash-1")
    repeat = await cash_out(api, host, 2000, key="cash-1")
    assert first.status_code == repeat.status_code == 202 and first.content == repeat.content
    conflict = await cash_out(api, host, 3000, key="cash-1")
    assert conflict.status_code == 409 and code(conflict) == "idempotency_conflict"
    missing = await api.call("POST", "/api/payouts", host.token, json={"diamonds": 2000})
    assert missing.status_code == 400 and code(missing) == "idempotency_key_required"
    assert len((await api.call("GET", "/api/payouts", host.token)).json()["items"]) == 1
    assert (await api.me(host))["diamonds"] == 3000


@pytest.mark.parametrize("settings_overrides", [{"payout_daily_cents_max": 1500}], indirect=True)
async def test_a_days_payouts_stop_at_the_daily_maximum_and_failed_ones_do_not_count(
    api: Api,
) -> None:
    host = await api.signup()
    await earn(api, host, [("galaxy", 6)])
    first = await cash_out(api, host, 2000)  # $10.00
    assert first.status_code == 202
    second = await cash_out(api, host, 2000)
    assert second.status_code == 422 and code(second) == "payout_limit"
    assert "500 cents are left today" in second.json()["error"]["message"]
    await settle(api, first.json()["id"], "failed")
    third = await cash_out(api, host, 2000)
    assert third.status_code == 202, third.text


async def test_settling_is_for_admins_and_the_review_list_shows_what_waits(api: Api) -> None:
    host = await api.signup()
    await earn(api, host, [("galaxy", 2)])
    payout = (await cash_out(api, host, 2000)).json()
    assert (await settle(api, payout["id"], "paid", token=host.token)).status_code == 401
    assert code(await settle(api, 999_999, "paid")) == "not_found"
    bad = await settle(api, payout["id"], "maybe")
    assert bad.status_code == 400 and code(bad) == "invalid"
    waiting = await api.call("GET", "/api/admin/payouts?older_than_s=0", ADMIN_TOKEN)
    assert [(p["id"], p["user"]) for p in waiting.json()["items"]] == [(payout["id"], host.id)]
    fresh = await api.call("GET", "/api/admin/payouts", ADMIN_TOKEN)  # default: 24 h review
    assert fresh.json()["items"] == []
    assert (await settle(api, payout["id"], "paid")).json()["status"] == "paid"
    after = await api.call("GET", "/api/admin/payouts?older_than_s=0", ADMIN_TOKEN)
    assert after.json()["items"] == []
