"""What a gift stands for in cash, shown to the viewer, the host and in every statement.

The viewer's coins cost what they paid for them, averaged over their purchases (bigger packages
are cheaper per coin); the host's diamonds are worth `cents_per_100_diamonds`; the platform keeps
the difference. All in millicents (1/1000 cent) so that a 1-coin Rose does not round away.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

from tests.e2e.ws_helpers import stage, welcome
from tests.support.client import Api
from tests.support.live import ADMIN_TOKEN


def value(paid: int, host: int) -> dict[str, object]:
    return {
        "currency": "USD",
        "paid_millicents": paid,
        "host_millicents": host,
        "platform_millicents": paid - host,
    }


async def test_a_viewer_sees_what_each_gift_cost_them_what_the_host_got_and_what_the_platform_kept(
    api: Api,
) -> None:
    s = await stage(api, [])
    viewer = await api.signup("buys_twice")
    await api.recharge(viewer, "coins_65")  # $0.99
    await api.recharge(viewer, "coins_330")  # $4.99: 395 coins for 598,000 millicents
    async with api.room(s.id, viewer.token) as ws:
        await welcome(ws)
        rose = await ws.gift("rose-1", "rose")
        # 598,000 * 1 // 395 millicents; a diamond cashes out at 0.5 cents
        assert rose["value"] == value(paid=1_513, host=500)
        doughnut = await ws.gift("doughnut-1", "doughnut")
        # the basis left, 596,487, over the 394 coins left, times 30, rounded down
        assert doughnut["value"] == value(paid=45_417, host=15_000)
        again = await ws.gift("doughnut-1", "doughnut")
        assert again["duplicate"] is True and again["value"] == doughnut["value"]
        # The rest, 364 coins, in four sends: the last coin takes what is left of the basis.
        rest = [
            await ws.gift(f"rest-{n}", "rose", count) for n, count in enumerate([99] * 3 + [67])
        ]
    assert [r["type"] for r in rest] == ["gift_ok"] * 4 and rest[-1]["coins"] == 0
    paid = [rose, doughnut, *rest]
    assert sum(r["value"]["paid_millicents"] for r in paid) == 598_000  # exactly $5.98
    assert sum(r["value"]["host_millicents"] for r in paid) == 395 * 500

    # The wallet's history tells the same, to the viewer and to the host.
    r = await api.call("GET", "/api/wallet/transactions?limit=20", viewer.token)
    sent = [t for t in r.json()["items"] if t["kind"] == "gift_sent"]
    assert [t["value"] for t in reversed(sent)] == [g["value"] for g in paid]
    r = await api.call("GET", "/api/wallet/transactions?limit=20", s.host.token)
    received = [t for t in r.json()["items"] if t["kind"] == "gift_received"]
    assert [t["value"] for t in reversed(received)] == [g["value"] for g in paid]
    recharges = [
        t
        for t in (await api.call("GET", "/api/wallet/transactions", viewer.token)).json()["items"]
        if t["kind"] == "recharge"
    ]
    assert all("value" not in t for t in recharges)

    # And so does the statement, one column each.
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    r = await api.call("GET", f"/api/wallet/statement.csv?month={month}", viewer.token)
    rows = [row for row in csv.DictReader(io.StringIO(r.text)) if row["kind"] == "gift_sent"]
    assert [
        (int(row["paid_millicents"]), int(row["host_millicents"]), int(row["platform_millicents"]))
        for row in rows
    ] == [
        (
            g["value"]["paid_millicents"],
            g["value"]["host_millicents"],
            g["value"]["platform_millicents"],
        )
        for g in paid
    ]

    audit = (await api.call("GET", "/api/admin/audit", ADMIN_TOKEN)).json()
    assert audit["balanced"], audit
    costs = audit["totals"]["coin_cost_millicents"]
    assert costs["held"] + costs["gifted"] + costs["refunded"] == costs["paid"]


async def test_a_refund_takes_its_coins_at_their_average_cost(api: Api) -> None:
    viewer = await api.signup("refunds_one")
    await api.recharge(viewer, "coins_330")  # $4.99
    second = await api.recharge(viewer, "coins_65")  # $0.99
    me = (await api.call("GET", "/api/me", viewer.token)).json()
    assert (me["coins"], me["coins_cost_millicents"], me["currency"]) == (395, 598_000, "USD")
    r = await api.call(
        "POST",
        "/api/wallet/refunds",
        viewer.token,
        json={"transaction_id": second["transaction_id"]},
        headers={"Idempotency-Key": "oops"},
    )
    assert r.status_code == 200, r.text
    # 65 of 395 coins leave at their average cost; the 330 left keep the rest of the basis.
    refunded = 598_000 * 65 // 395
    me = (await api.call("GET", "/api/me", viewer.token)).json()
    assert (me["coins"], me["coins_cost_millicents"]) == (330, 598_000 - refunded)
    items = (await api.call("GET", "/api/wallet/transactions", viewer.token)).json()["items"]
    assert items[0]["kind"] == "refund" and items[0]["coins_cost_millicents"] == refunded
    assert items[0]["price_cents"] == 99  # what the provider gives back is the price paid
    audit = (await api.call("GET", "/api/admin/audit", ADMIN_TOKEN)).json()
    assert audit["balanced"], audit


async def test_a_host_sees_what_their_diamonds_are_worth(api: Api) -> None:
    s = await stage(api, ["fan"])
    async with api.room(s.id, s.viewers[0].token) as ws:
        await welcome(ws)
        assert (await ws.gift("c", "corgi"))["type"] == "gift_ok"
    me = (await api.call("GET", "/api/me", s.host.token)).json()
    assert (me["diamonds"], me["diamonds_value_millicents"]) == (299, 299 * 500)
    assert me["coins_cost_millicents"] == 0


async def test_the_worked_example_in_money_md(api: Api) -> None:
    """alice buys 330 coins for $4.99, sends twelve Roses one at a time, then a Doughnut."""
    s = await stage(api, ["alice_example"])
    alice = s.viewers[0]
    async with api.room(s.id, alice.token) as ws:
        await welcome(ws)
        roses = [await ws.gift(f"g-{n:04}", "rose") for n in range(1, 13)]
        doughnut = await ws.gift("g-0013", "doughnut")
    assert sum(r["value"]["paid_millicents"] for r in roses) == 18_144
    assert doughnut["value"] == value(paid=45_363, host=15_000)
    me = (await api.call("GET", "/api/me", alice.token)).json()
    assert (me["coins"], me["coins_cost_millicents"]) == (288, 435_493)
