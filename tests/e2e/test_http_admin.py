"""`GET /api/admin/audit`: off without an admin token, 401 with a wrong one, else the ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.http_helpers import (
    ADULT_BIRTHDATE,
    assert_error,
    assert_recent,
    funded_viewer,
    ok_json,
    on_shared_server,
    send_gifts,
    shared_server,
    unique_name,
)
from tests.support.client import Api
from tests.support.live import ADMIN_TOKEN, LiveServer


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    async with shared_server(tmp_path_factory) as api:
        yield api


@pytest.mark.parametrize("settings_overrides", [{"admin_token": ""}])
@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-header"),
        pytest.param(f"Bearer {ADMIN_TOKEN}", id="the-usual-admin-token"),
        pytest.param("Bearer anything", id="any-token"),
    ],
)
async def test_admin_calls_are_off_with_403_when_the_server_has_no_admin_token(
    live: LiveServer, authorization: str | None
) -> None:
    # Not the `api` fixture: it audits through this very call when the test ends.
    api = Api(live.url)
    try:
        headers = {"Authorization": authorization} if authorization else {}
        r = await api.call("GET", "/api/admin/audit", headers=headers)
        assert_error(r, 403, "forbidden")
    finally:
        await api.close()


@on_shared_server
@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-header"),
        pytest.param("Bearer wrong", id="wrong-token"),
        pytest.param(f"Bearer {ADMIN_TOKEN}x", id="admin-token-plus-a-char"),
        pytest.param(f"Bearer {ADMIN_TOKEN[:-1]}", id="admin-token-minus-a-char"),
        pytest.param(f"Bearer {ADMIN_TOKEN.upper()}", id="admin-token-in-capitals"),
        pytest.param(f"Basic {ADMIN_TOKEN}", id="basic-scheme"),
        pytest.param(ADMIN_TOKEN, id="no-scheme"),
        pytest.param("user", id="a-user-token"),
    ],
)
async def test_the_audit_refuses_anything_but_the_admin_token_with_401(
    shared_api: Api, authorization: str | None
) -> None:
    if authorization == "user":
        user = await shared_api.signup(unique_name(), ADULT_BIRTHDATE)
        authorization = f"Bearer {user.token}"
    headers = {"Authorization": authorization} if authorization else {}
    r = await shared_api.call("GET", "/api/admin/audit", headers=headers)
    assert_error(r, 401, "unauthorized")


async def audit(api: Api) -> dict[str, Any]:
    return ok_json(await api.call("GET", "/api/admin/audit", ADMIN_TOKEN))


async def test_a_fresh_ledger_is_balanced_with_nothing_issued(api: Api) -> None:
    report = await audit(api)
    assert report["balanced"] is True
    assert report["totals"]["coin"]["issued"] == 0
    assert report["totals"]["diamond"]["issued"] == 0


async def test_the_audit_totals_match_what_was_recharged_and_gifted(api: Api) -> None:
    host = await api.signup(unique_name("host"), ADULT_BIRTHDATE)
    small = await api.signup(unique_name("small"), ADULT_BIRTHDATE)
    large = await api.signup(unique_name("large"), ADULT_BIRTHDATE)
    await api.recharge(small, "coins_65")
    await api.recharge(large, "coins_330")
    await api.recharge(large, "coins_65")
    room = await api.go_live(host)
    await send_gifts(api, room["id"], small, [("doughnut", 1), ("finger_heart", 1)])
    await send_gifts(api, room["id"], large, [("hand_hearts", 1), ("rose", 7)])

    report = await audit(api)
    assert report["balanced"] is True, report
    recharged, gifted = 65 + 330 + 65, 30 + 5 + 100 + 7
    coin, diamond = report["totals"]["coin"], report["totals"]["diamond"]
    assert coin["issued"] == recharged
    assert coin["spent"] == gifted
    assert coin["held_by_users"] == recharged - gifted
    assert diamond["issued"] == gifted  # diamonds_per_coin is 1
    assert diamond["held_by_users"] == gifted
    assert (await api.me(host))["diamonds"] == gifted


# --- GET /api/admin/rooms/{id}/gifts: the ledger's gifts into one room ----------------------


async def room_gifts(api: Api, room_id: int, query: str = "") -> dict[str, Any]:
    return ok_json(await api.call("GET", f"/api/admin/rooms/{room_id}/gifts{query}", ADMIN_TOKEN))


async def test_a_rooms_gifts_list_every_ledger_transfer_with_its_request_id(api: Api) -> None:
    host = await api.signup(unique_name("host"), ADULT_BIRTHDATE)
    alice = await api.signup(unique_name("alice"), ADULT_BIRTHDATE)
    bob = await api.signup(unique_name("bob"), ADULT_BIRTHDATE)
    await api.recharge(alice, "coins_330")
    await api.recharge(bob, "coins_330")
    room = await api.go_live(host)
    sent: list[tuple[int, str, dict[str, Any]]] = []
    async with api.room(room["id"], alice.token) as ws:
        assert (await ws.recv())["type"] == "welcome"
        for request_id, gift_id, count in (("a-1", "rose", 3), ("a-2", "hand_hearts", 1)):
            answer = await ws.gift(request_id, gift_id, count)
            assert answer["type"] == "gift_ok", answer
            sent.append((alice.id, request_id, answer))
        again = await ws.gift("a-1", "rose", 3)  # a duplicate is no second transfer
        assert again.get("duplicate") is True, again
    async with api.room(room["id"], bob.token) as ws:
        assert (await ws.recv())["type"] == "welcome"
        answer = await ws.gift("b-1", "doughnut", 2)
        assert answer["type"] == "gift_ok", answer
        sent.append((bob.id, "b-1", answer))
    # The host's next live is another room: its gifts are not this room's.
    ended = await api.call("POST", f"/api/rooms/{room['id']}/end", host.token)
    assert ended.status_code == 200, ended.text
    later = await api.go_live(host)
    await send_gifts(api, later["id"], bob, [("rose", 1)])

    page = await room_gifts(api, room["id"])
    assert page["room"] == room["id"] and page["host"] == {"id": host.id, "name": host.name}
    assert page["next"] is None
    got = [
        (g["sender"]["id"], g["request_id"], g["gift_id"], g["count"], g["coins"])
        for g in page["items"]
    ]
    assert got == [
        (alice.id, "a-1", "rose", 3, 3),
        (alice.id, "a-2", "hand_hearts", 1, 100),
        (bob.id, "b-1", "doughnut", 2, 60),
    ]
    for item, (_, _, answer) in zip(page["items"], sent, strict=True):
        assert item["seq"] == answer["seq"]
        assert item["coins"] == answer["coins_spent"] and item["diamonds"] == answer["diamonds"]
        assert_recent(item["at"])
    transfers = [g["transfer"] for g in page["items"]]
    assert transfers == sorted(transfers) and len(set(transfers)) == 3
    assert sum(g["diamonds"] for g in page["items"]) == (await api.me(host))["diamonds"] - 1


async def test_a_rooms_gifts_come_in_pages_after_a_transfer_id(api: Api) -> None:
    host = await api.signup(unique_name("host"), ADULT_BIRTHDATE)
    viewer = await funded_viewer(api)
    room = await api.go_live(host)
    await send_gifts(api, room["id"], viewer, [("rose", 1)] * 5)
    seen: list[int] = []
    query = "?limit=2"
    for _ in range(5):
        page = await room_gifts(api, room["id"], query)
        seen += [g["seq"] for g in page["items"]]
        if page["next"] is None:
            break
        query = f"?limit=2&after={page['next']}"
    assert seen == [1, 2, 3, 4, 5]


@on_shared_server
@pytest.mark.parametrize(
    ("path", "token", "status", "code"),
    [
        pytest.param("/api/admin/rooms/1/gifts", None, 401, "unauthorized", id="no-token"),
        pytest.param("/api/admin/rooms/1/gifts", "wrong", 401, "unauthorized", id="wrong-token"),
        pytest.param("/api/admin/rooms/999999/gifts", ADMIN_TOKEN, 404, "not_found", id="no-room"),
        pytest.param("/api/admin/rooms/x/gifts", ADMIN_TOKEN, 404, "not_found", id="bad-room-id"),
        pytest.param("/api/admin/rooms/1/gifts?limit=0", ADMIN_TOKEN, 400, "invalid", id="limit-0"),
        pytest.param(
            "/api/admin/rooms/1/gifts?limit=1001", ADMIN_TOKEN, 400, "invalid", id="limit-past-max"
        ),
        pytest.param(
            "/api/admin/rooms/1/gifts?after=-1", ADMIN_TOKEN, 400, "invalid", id="after-negative"
        ),
    ],
)
async def test_a_rooms_gifts_refusals(
    shared_api: Api, path: str, token: str | None, status: int, code: str
) -> None:
    host = await shared_api.signup(unique_name("host"), ADULT_BIRTHDATE)
    room = await shared_api.go_live(host)
    r = await shared_api.call("GET", path.replace("/1/", f"/{room['id']}/"), token)
    assert_error(r, status, code)
