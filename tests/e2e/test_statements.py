"""Monthly statements (CSV, running balances) and a creator's earnings by day and by live."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

import pytest

from tests.support.client import Api, User


async def gifts_to(api: Api, host: User, viewer: User, gifts: list[tuple[str, int]]) -> int:
    room = await api.go_live(host, "statement live")
    async with api.room(room["id"], viewer.token) as ws:
        await ws.recv_type("welcome")
        for gift, count in gifts:
            assert (await ws.gift(uuid.uuid4().hex, gift, count))["type"] == "gift_ok"
    await api.call("POST", f"/api/rooms/{room['id']}/end", host.token)
    return int(room["id"])


def this_month() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m")


async def test_a_statement_lists_every_entry_with_running_balances(api: Api) -> None:
    host, viewer = await api.signup("stmt_host"), await api.signup("stmt_viewer")
    bought = await api.recharge(viewer, "coins_330")
    room = await gifts_to(api, host, viewer, [("rose", 5), ("doughnut", 1)])
    await api.call(
        "POST",
        "/api/wallet/refunds",
        viewer.token,
        json={"transaction_id": (await api.recharge(viewer, "coins_65"))["transaction_id"]},
        headers={"Idempotency-Key": "undo"},
    )
    r = await api.call("GET", f"/api/wallet/statement.csv?month={this_month()}", viewer.token)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["kind"], row["coins"], row["coins_balance"]) for row in rows] == [
        ("recharge", "330", "330"),
        ("gift_sent", "-5", "325"),
        ("gift_sent", "-30", "295"),
        ("recharge", "65", "360"),
        ("refund", "-65", "295"),
    ]
    assert rows[0]["transaction_id"] == str(bought["transaction_id"])
    assert rows[0]["cash_cents"] == "499" and rows[-1]["cash_cents"] == "-99"
    assert rows[1]["description"] == f"sent rose x5 to stmt_host in room {room}"
    host_rows = list(
        csv.DictReader(
            io.StringIO(
                (
                    await api.call(
                        "GET", f"/api/wallet/statement.csv?month={this_month()}", host.token
                    )
                ).text
            )
        )
    )
    assert [
        (row["kind"], row["diamonds"], row["diamonds_balance"], row["cash_cents"])
        for row in host_rows
    ] == [
        ("gift_received", "5", "5", "2"),
        ("gift_received", "30", "35", "15"),
    ]


async def test_another_month_is_empty_but_for_the_header(api: Api) -> None:
    viewer = await api.signup()
    await api.recharge(viewer, "coins_65")
    r = await api.call("GET", "/api/wallet/statement.csv?month=2001-01", viewer.token)
    assert r.status_code == 200
    assert r.text.splitlines() == [
        "date,transaction_id,kind,description,coins,diamonds,coins_balance,diamonds_balance,"
        "cash_cents,currency,paid_millicents,host_millicents,platform_millicents"
    ]


@pytest.mark.parametrize("month", ["", "2026-13", "26-11", "2026-1", "abcd-ef", "1999-12"])
async def test_a_bad_month_is_invalid(api: Api, month: str) -> None:
    viewer = await api.signup()
    r = await api.call("GET", f"/api/wallet/statement.csv?month={month}", viewer.token)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid"


async def test_a_creator_sees_earnings_by_day_and_by_live(api: Api) -> None:
    host, viewer = await api.signup(), await api.signup()
    await api.recharge(viewer, "coins_6607")
    first = await gifts_to(api, host, viewer, [("galaxy", 1), ("rose", 3)])
    second = await gifts_to(api, host, viewer, [("corgi", 2)])
    r = await api.call("GET", "/api/earnings", host.token)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["diamonds"] == 1601 and doc["cents"] == 800
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert doc["to"] == today
    assert doc["by_day"] == [{"day": today, "diamonds": 1601, "cents": 800, "gifts": 3}]
    assert [
        (live["room"]["id"], live["diamonds"], live["cents"], live["gifts"])
        for live in doc["by_live"]
    ] == [(first, 1003, 501, 2), (second, 598, 299, 1)]
    empty = await api.call("GET", "/api/earnings?from=2001-01-01&to=2001-01-31", host.token)
    assert empty.json()["diamonds"] == 0 and empty.json()["by_live"] == []


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-02-30",
        "from=tomorrow",
        "from=2026-11-10&to=2026-11-01",
        "from=2020-01-01&to=2026-01-01",
    ],
)
async def test_bad_earnings_ranges_are_invalid(api: Api, query: str) -> None:
    host = await api.signup()
    r = await api.call("GET", f"/api/earnings?{query}", host.token)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid"
