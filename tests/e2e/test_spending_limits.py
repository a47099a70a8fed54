"""Self-set daily spending limits over HTTP and the room socket."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.http_helpers import parse_rfc3339_utc
from tests.support.client import Api, User

FAST = {"gift_rate_per_s": 1000, "gift_burst": 1000}


async def set_limit(api: Api, user: User, daily: Any) -> dict[str, Any]:
    r = await api.call("PUT", "/api/wallet/limits", user.token, json={"daily_coins": daily})
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


async def viewer_in_a_room(api: Api, package: str = "coins_330") -> tuple[User, int]:
    host, viewer = await api.signup(), await api.signup()
    await api.recharge(viewer, package)
    room = await api.go_live(host)
    return viewer, int(room["id"])


async def test_a_viewer_sets_a_limit_of_50_and_gifts_stop_at_50(api: Api) -> None:
    viewer, room = await viewer_in_a_room(api)
    doc = await set_limit(api, viewer, 50)
    assert doc["daily_coins"] == 50 and doc["pending"] is None
    assert doc["spent_today"] == 0 and doc["left_today"] == 50
    async with api.room(room, viewer.token) as ws:
        await ws.recv_type("welcome")
        assert (await ws.gift("a", "doughnut", 1))["type"] == "gift_ok"  # 30
        refused = await ws.gift("b", "doughnut", 1)
        assert refused["type"] == "error" and refused["code"] == "spending_limit", refused
        assert "20 more today" in refused["message"]
        assert (await ws.gift("c", "rose", 20))["type"] == "gift_ok"  # exactly the 20 left
        assert (await ws.gift("d", "rose", 1))["code"] == "spending_limit"
    me = await api.me(viewer)
    assert me["coins"] == 330 - 50
    doc = (await api.call("GET", "/api/wallet/limits", viewer.token)).json()
    assert doc["spent_today"] == 50 and doc["left_today"] == 0


async def test_what_was_spent_earlier_today_counts_against_a_new_limit(api: Api) -> None:
    viewer, room = await viewer_in_a_room(api)
    async with api.room(room, viewer.token) as ws:
        await ws.recv_type("welcome")
        assert (await ws.gift("a", "doughnut", 1))["type"] == "gift_ok"
        doc = await set_limit(api, viewer, 40)
        assert doc["spent_today"] == 30 and doc["left_today"] == 10
        assert (await ws.gift("b", "doughnut", 1))["code"] == "spending_limit"
        assert (await ws.gift("c", "rose", 10))["type"] == "gift_ok"


async def test_raising_or_removing_waits_a_day_and_is_reported_pending(api: Api) -> None:
    viewer, _ = await viewer_in_a_room(api)
    await set_limit(api, viewer, 100)
    raised = await set_limit(api, viewer, 500)
    assert raised["daily_coins"] == 100
    assert raised["pending"]["daily_coins"] == 500
    assert raised["pending"]["effective_at"].endswith("Z")
    removed = await set_limit(api, viewer, None)
    assert removed["daily_coins"] == 100 and removed["pending"]["daily_coins"] is None
    lowered = await set_limit(api, viewer, 60)  # lowering applies at once, cancels the wait
    assert lowered == {**lowered, "daily_coins": 60, "pending": None}


@pytest.mark.parametrize(
    "settings_overrides", [{**FAST, "spending_limit_cooling_off_ms": 300}], indirect=True
)
async def test_a_raised_limit_applies_once_the_cooling_off_is_over(api: Api) -> None:
    viewer, room = await viewer_in_a_room(api)
    await set_limit(api, viewer, 10)
    await set_limit(api, viewer, 100)
    async with api.room(room, viewer.token) as ws:
        await ws.recv_type("welcome")
        assert (await ws.gift("a", "doughnut", 1))["code"] == "spending_limit"
        await asyncio.sleep(0.4)
        assert (await ws.gift("b", "doughnut", 1))["type"] == "gift_ok"
    doc = (await api.call("GET", "/api/wallet/limits", viewer.token)).json()
    assert doc["daily_coins"] == 100 and doc["pending"] is None


@pytest.mark.parametrize("settings_overrides", [FAST], indirect=True)
async def test_gifts_racing_over_three_sockets_never_pass_the_limit(api: Api) -> None:
    viewer, room = await viewer_in_a_room(api)
    await set_limit(api, viewer, 25)

    async def blast(n: int) -> int:
        async with api.room(room, viewer.token) as ws:
            await ws.recv_type("welcome")
            ids = [f"s{n}-{i}" for i in range(20)]
            for request_id in ids:
                await ws.send({"type": "gift", "id": request_id, "gift_id": "rose", "count": 1})
            accepted = 0
            answered = 0
            while answered < len(ids):
                doc = await ws.recv()
                if doc.get("type") in ("gift_ok", "error") and doc.get("id") in ids:
                    answered += 1
                    if doc["type"] == "gift_ok":
                        accepted += 1
                    else:
                        assert doc["code"] == "spending_limit", doc
            return accepted

    accepted = await asyncio.gather(*(blast(n) for n in range(3)))
    assert sum(accepted) == 25
    assert (await api.me(viewer))["coins"] == 330 - 25


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"daily_coins": -1},
        {"daily_coins": 1.5},
        {"daily_coins": "10"},
        {"daily_coins": True},
        {"daily_coins": 10**12},
        {"daily_coins": 10, "time_zone": "Mars/Olympus_Mons"},
        {"daily_coins": 10, "time_zone": "../../etc/passwd"},
        {"daily_coins": 10, "time_zone": 1},
        [],
        "x",
    ],
)
async def test_bad_limits_are_refused_and_change_nothing(api: Api, body: Any) -> None:
    viewer = await api.signup()
    await set_limit(api, viewer, 70)
    r = await api.call("PUT", "/api/wallet/limits", viewer.token, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid"
    doc = (await api.call("GET", "/api/wallet/limits", viewer.token)).json()
    assert doc["daily_coins"] == 70


async def test_limits_need_a_signed_in_caller(api: Api) -> None:
    r = await api.call("PUT", "/api/wallet/limits", json={"daily_coins": 5})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def a_zone_on_another_date() -> tuple[str, dt.datetime]:
    """A time zone whose calendar date differs from UTC's right now, and its local time.

    UTC-12 is a day behind before noon UTC; UTC+14 a day ahead from 10:00 UTC on.
    """
    now = dt.datetime.now(dt.UTC)
    zone = "Etc/GMT+12" if now.hour < 11 else "Etc/GMT-14"  # POSIX names: the sign is inverted
    return zone, now.astimezone(ZoneInfo(zone))


async def test_days_follow_the_users_time_zone_and_what_was_spent_earlier_that_day_counts(
    api: Api,
) -> None:
    viewer, room = await viewer_in_a_room(api)
    zone, local = a_zone_on_another_date()
    async with api.room(room, viewer.token) as ws:
        await ws.recv_type("welcome")
        assert (await ws.gift("before", "doughnut", 1))["type"] == "gift_ok"  # 30, no limit yet
        r = await api.call(
            "PUT",
            "/api/wallet/limits",
            viewer.token,
            json={"daily_coins": 40, "time_zone": zone},
        )
        assert r.status_code == 200, r.text
        doc = r.json()
        # No limit was in force, so the zone applies at once, and today is the local today.
        assert (doc["daily_coins"], doc["time_zone"], doc["pending"]) == (40, zone, None)
        assert (doc["spent_today"], doc["left_today"]) == (30, 10)
        midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), local.tzinfo)
        assert parse_rfc3339_utc(doc["day_ends_at"]) == midnight.astimezone(dt.UTC)
        refused = await ws.gift("over", "doughnut", 1)
        assert refused["code"] == "spending_limit", refused
        assert f"midnight {zone}" in refused["message"]
        assert (await ws.gift("fits", "rose", 10))["type"] == "gift_ok"

    # With a limit in force, moving to another zone would move the day's end: it waits.
    r = await api.call(
        "PUT", "/api/wallet/limits", viewer.token, json={"daily_coins": 40, "time_zone": None}
    )
    doc = r.json()
    assert (doc["daily_coins"], doc["time_zone"]) == (40, zone)
    assert doc["pending"]["time_zone"] == "UTC" and doc["pending"]["daily_coins"] == 40
    waits = parse_rfc3339_utc(doc["pending"]["effective_at"]) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23) < waits <= dt.timedelta(hours=24)
    # Leaving time_zone out keeps what was asked; asking again does not restart the wait.
    again = (
        await api.call("PUT", "/api/wallet/limits", viewer.token, json={"daily_coins": 40})
    ).json()
    assert again["pending"] == doc["pending"]
    got = (await api.call("GET", "/api/wallet/limits", viewer.token)).json()
    assert (got["time_zone"], got["pending"], got["spent_today"]) == (zone, doc["pending"], 40)
