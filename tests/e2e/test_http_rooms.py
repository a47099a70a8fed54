"""The room calls: go live, list, describe, end, leaderboard, goal and overlay token.

Tests that look at one room share a server per module; the tests of `GET /api/rooms`, which
lists every live room, each get a fresh server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.http_helpers import (
    ADULT_BIRTHDATE,
    assert_error,
    assert_has_keys,
    assert_recent,
    describe,
    eventually,
    funded_viewer,
    is_int,
    ok_json,
    on_shared_server,
    send_gifts,
    shared_server,
    unique_name,
    years_ago,
)
from tests.support.client import Api, User


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    async with shared_server(tmp_path_factory) as api:
        yield api


async def new_host(api: Api) -> User:
    return await api.signup(unique_name("host"), ADULT_BIRTHDATE)


async def get_room(api: Api, room_id: int | str, token: str | None = None) -> dict[str, Any]:
    return ok_json(await api.call("GET", f"/api/rooms/{room_id}", token))


async def live_rooms(api: Api, token: str | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok_json(await api.call("GET", "/api/rooms", token))["items"]
    return items


def viewers_of(rooms: list[dict[str, Any]], room_id: int) -> int | None:
    for room in rooms:
        if room["id"] == room_id:
            count: int = room["viewers"]
            return count
    return None


# --- POST /api/rooms --------------------------------------------------------------------


@on_shared_server
async def test_going_live_answers_201_with_the_room_and_an_overlay_token(shared_api: Api) -> None:
    host = await new_host(shared_api)
    r = await shared_api.call("POST", "/api/rooms", host.token, json={"title": "Friday night"})
    room = ok_json(r, 201)
    assert_has_keys(room, {"id", "title", "host", "status", "overlay_token"}, "a new room")
    assert is_int(room["id"])
    assert room["title"] == "Friday night"
    assert room["host"]["id"] == host.id and room["host"]["name"] == host.name
    assert room["status"] == "live"
    assert isinstance(room["overlay_token"], str) and room["overlay_token"]


@on_shared_server
@pytest.mark.parametrize(
    "title",
    [
        pytest.param("a", id="1-char"),
        pytest.param("t" * 100, id="100-chars"),
        pytest.param("🎉 Fête du vendredi — 金曜日", id="unicode"),
    ],
)
async def test_a_title_of_1_to_100_characters_is_accepted(shared_api: Api, title: str) -> None:
    host = await new_host(shared_api)
    r = await shared_api.call("POST", "/api/rooms", host.token, json={"title": title})
    assert ok_json(r, 201)["title"] == title


@on_shared_server
@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-title"),
        pytest.param({"title": ""}, id="empty"),
        pytest.param({"title": "   "}, id="blank"),
        pytest.param({"title": "t" * 101}, id="101-chars"),
        pytest.param({"title": "t" * 5000}, id="5000-chars"),
        pytest.param({"title": None}, id="null"),
        pytest.param({"title": 42}, id="number"),
        pytest.param({"title": True}, id="bool"),
        pytest.param({"title": ["live"]}, id="list"),
        pytest.param(["live"], id="array-body"),
        pytest.param("live", id="string-body"),
    ],
)
async def test_a_missing_or_bad_title_is_invalid(shared_api: Api, body: Any) -> None:
    host = await new_host(shared_api)
    assert_error(await shared_api.call("POST", "/api/rooms", host.token, json=body), 400, "invalid")
    # No room was opened: the host can still go live.
    await shared_api.go_live(host)


@on_shared_server
@pytest.mark.parametrize("body", [pytest.param(b"", id="empty"), pytest.param(b"{", id="broken")])
async def test_a_room_body_that_is_not_json_is_invalid(shared_api: Api, body: bytes) -> None:
    host = await new_host(shared_api)
    r = await shared_api.call(
        "POST", "/api/rooms", host.token, content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(r, 400, "invalid")


@on_shared_server
async def test_a_user_under_18_cannot_host(shared_api: Api) -> None:
    minor = await shared_api.signup(unique_name("minor"), years_ago(18, days=1))
    r = await shared_api.call("POST", "/api/rooms", minor.token, json={"title": "my live"})
    assert_error(r, 403, "age_restricted")


@on_shared_server
async def test_a_host_has_one_live_room_at_a_time(shared_api: Api) -> None:
    host = await new_host(shared_api)
    first = await shared_api.go_live(host)
    r = await shared_api.call("POST", "/api/rooms", host.token, json={"title": "second"})
    assert_error(r, 403, "forbidden")
    ok_json(await shared_api.call("POST", f"/api/rooms/{first['id']}/end", host.token))
    again = await shared_api.go_live(host, "after the first ended")
    assert again["id"] != first["id"]


@on_shared_server
async def test_of_ten_concurrent_go_lives_by_one_host_exactly_one_opens_a_room(
    shared_api: Api,
) -> None:
    host = await new_host(shared_api)
    answers = await asyncio.gather(
        *(
            shared_api.call("POST", "/api/rooms", host.token, json={"title": f"race {i}"})
            for i in range(10)
        )
    )
    opened = [r for r in answers if r.status_code == 201]
    assert len(opened) == 1, [describe(r) for r in answers]
    for r in answers:
        if r.status_code != 201:
            assert_error(r, 403, "forbidden")
    mine = [room for room in await live_rooms(shared_api) if room["host"]["id"] == host.id]
    assert [room["id"] for room in mine] == [opened[0].json()["id"]]


# --- GET /api/rooms ---------------------------------------------------------------------


async def test_the_room_list_shows_live_rooms_only(api: Api) -> None:
    assert await live_rooms(api) == []
    hosts = [await new_host(api) for _ in range(3)]
    rooms = [await api.go_live(host, f"live {i}") for i, host in enumerate(hosts)]
    ok_json(await api.call("POST", f"/api/rooms/{rooms[1]['id']}/end", hosts[1].token))

    listed = await live_rooms(api)
    assert sorted(room["id"] for room in listed) == sorted([rooms[0]["id"], rooms[2]["id"]])
    for item in listed:
        assert_has_keys(item, {"id", "title", "host", "viewers", "started_at"}, "a listed room")
        expected = next(room for room in rooms if room["id"] == item["id"])
        assert item["title"] == expected["title"]
        assert item["host"]["id"] == expected["host"]["id"]
        assert item["host"]["name"] == expected["host"]["name"]
        assert item["viewers"] == 0 and is_int(item["viewers"])
        assert_recent(item["started_at"])
        assert "overlay_token" not in item, "the overlay token is the host's secret"


async def test_viewers_count_distinct_signed_in_viewers_but_not_the_host_or_overlays(
    api: Api,
) -> None:
    host = await new_host(api)
    alice, bob = await funded_viewer(api), await funded_viewer(api)
    room = await api.go_live(host)
    rid = room["id"]

    async def counts() -> tuple[int | None, int]:
        listed = viewers_of(await live_rooms(api), rid)
        described: int = (await get_room(api, rid))["viewers"]
        return listed, described

    async with (
        api.room(rid, host.token) as host_ws,
        api.room(rid, room["overlay_token"], overlay=True) as overlay_ws,
    ):
        await host_ws.recv_type("welcome")
        await overlay_ws.recv_type("welcome")
        assert await counts() == (0, 0), "the host and overlays are not viewers"
        async with api.room(rid, alice.token) as alice_ws:
            await alice_ws.recv_type("welcome")
            assert await counts() == (1, 1)
            async with api.room(rid, alice.token) as alice_again:
                await alice_again.recv_type("welcome")
                assert await counts() == (1, 1), "two tabs of one viewer are one viewer"
                async with api.room(rid, bob.token) as bob_ws:
                    await bob_ws.recv_type("welcome")
                    assert await counts() == (2, 2)
                assert await eventually(counts, lambda c: c == (1, 1)) == (1, 1)
        assert await eventually(counts, lambda c: c == (0, 0)) == (0, 0)


# --- GET /api/rooms/{id} ----------------------------------------------------------------


@on_shared_server
async def test_a_room_is_described_with_its_seq_viewers_and_top(shared_api: Api) -> None:
    api = shared_api
    host = await new_host(api)
    viewer = await funded_viewer(api)
    room = await api.go_live(host, "described")
    doc = await get_room(api, room["id"], viewer.token)
    assert_has_keys(doc, {"id", "title", "host", "status", "viewers", "seq", "top"}, "a room")
    assert doc["id"] == room["id"] and doc["title"] == "described"
    assert doc["host"]["id"] == host.id and doc["host"]["name"] == host.name
    assert doc["status"] == "live"
    assert doc["seq"] == 0 and doc["viewers"] == 0 and doc["top"] == []
    assert "overlay_token" not in doc, "the overlay token is the host's secret"

    [ok] = await send_gifts(api, room["id"], viewer, [("hand_hearts", 1)])
    doc = await get_room(api, room["id"], viewer.token)
    assert doc["seq"] == ok["seq"] == 1
    assert doc["top"] == [{"user": {"id": viewer.id, "name": viewer.name}, "coins": 100}]


BAD_ROOM_IDS = [
    pytest.param("999999", id="unknown"),
    pytest.param("0", id="zero"),
    pytest.param("abc", id="word"),
    pytest.param("1.5", id="fraction"),
    pytest.param("-1", id="negative"),
    pytest.param("0x1", id="hex"),
    pytest.param("1e3", id="exponent"),
    pytest.param("%201", id="leading-space"),
    pytest.param("9" * 30, id="30-digits"),
]


@on_shared_server
@pytest.mark.parametrize("room_id", BAD_ROOM_IDS)
async def test_every_room_call_answers_404_for_an_unknown_or_non_numeric_id(
    shared_api: Api, room_id: str
) -> None:
    host = await new_host(shared_api)
    await shared_api.go_live(host)  # room 1 exists, so "1.5" or " 1" must not resolve to it
    calls: list[tuple[str, str, Any]] = [
        ("GET", "", None),
        ("GET", "/leaderboard", None),
        ("POST", "/end", None),
        ("PUT", "/goal", {"title": "goal", "coins": 10}),
        ("POST", "/overlay_token", None),
    ]
    answers = [
        await shared_api.call(method, f"/api/rooms/{room_id}{suffix}", host.token, json=body)
        for method, suffix, body in calls
    ]
    wrong = [describe(r) for r in answers if r.status_code != 404]
    assert not wrong, "expected 404 not_found:\n" + "\n".join(wrong)
    for r in answers:
        assert_error(r, 404, "not_found")


# --- POST /api/rooms/{id}/end -----------------------------------------------------------


@on_shared_server
async def test_only_the_host_ends_a_live_and_ending_again_is_still_ok(shared_api: Api) -> None:
    api = shared_api
    host = await new_host(api)
    viewer = await funded_viewer(api)
    room = await api.go_live(host)
    rid = room["id"]
    await send_gifts(api, rid, viewer, [("hand_hearts", 1)])

    async with api.room(rid, viewer.token) as ws:
        await ws.recv_type("welcome")
        r = await api.call("POST", f"/api/rooms/{rid}/end", viewer.token)
        assert_error(r, 403, "forbidden")
        assert (await get_room(api, rid))["status"] == "live"

        assert ok_json(await api.call("POST", f"/api/rooms/{rid}/end", host.token)) == {
            "status": "ended"
        }
        ended = await ws.recv_type("room_ended")
        assert ended["seq"] == 2
        assert (await ws.closed())[0] == 1000

    again = ok_json(await api.call("POST", f"/api/rooms/{rid}/end", host.token))
    assert again["status"] == "ended"
    doc = await get_room(api, rid)
    assert doc["status"] == "ended"
    assert doc["seq"] == 2, "the gift, then room_ended"
    assert viewers_of(await live_rooms(api), rid) is None, "an ended room is not listed"


@on_shared_server
async def test_concurrent_ends_all_answer_ended_and_end_the_live_once(shared_api: Api) -> None:
    host = await new_host(shared_api)
    room = await shared_api.go_live(host)
    answers = await asyncio.gather(
        *(shared_api.call("POST", f"/api/rooms/{room['id']}/end", host.token) for _ in range(20))
    )
    wrong = [describe(r) for r in answers if r.status_code != 200]
    assert not wrong, "a repeated end must answer 200 ended:\n" + "\n".join(wrong)
    assert [ok_json(r)["status"] for r in answers] == ["ended"] * 20
    assert (await get_room(shared_api, room["id"]))["seq"] == 1, "one room_ended event"


# --- GET /api/rooms/{id}/leaderboard ----------------------------------------------------


async def leaderboard(api: Api, room_id: int) -> list[dict[str, Any]]:
    doc = ok_json(await api.call("GET", f"/api/rooms/{room_id}/leaderboard"))
    assert set(doc) >= {"top"}
    top: list[dict[str, Any]] = doc["top"]
    return top


def ranking(top: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(entry["user"]["id"], entry["coins"]) for entry in top]


@on_shared_server
async def test_the_leaderboard_ranks_gifters_by_coins_spent_most_first(shared_api: Api) -> None:
    api = shared_api
    host = await new_host(api)
    room = await api.go_live(host)
    rid = room["id"]
    assert await leaderboard(api, rid) == []

    small, big, middle = [await funded_viewer(api) for _ in range(3)]
    await send_gifts(api, rid, small, [("finger_heart", 1)])
    await send_gifts(api, rid, big, [("hand_hearts", 1)])
    await send_gifts(api, rid, middle, [("doughnut", 1)])
    top = await leaderboard(api, rid)
    assert ranking(top) == [(big.id, 100), (middle.id, 30), (small.id, 5)]
    for entry, user in zip(top, (big, middle, small), strict=True):
        assert entry["user"]["name"] == user.name
        assert is_int(entry["coins"])

    # Coins add up per gifter: 5 + 100 + 1 overtakes 100.
    await send_gifts(api, rid, small, [("hand_hearts", 1), ("rose", 1)])
    assert ranking(await leaderboard(api, rid)) == [
        (small.id, 106),
        (big.id, 100),
        (middle.id, 30),
    ]


@on_shared_server
async def test_the_leaderboard_shows_at_least_10_gifters(shared_api: Api) -> None:
    api = shared_api
    host = await new_host(api)
    room = await api.go_live(host)
    gifters = [await funded_viewer(api, "coins_65") for _ in range(12)]
    for coins, gifter in enumerate(gifters, start=1):
        await send_gifts(api, room["id"], gifter, [("rose", coins)])
    top = ranking(await leaderboard(api, room["id"]))
    assert len(top) >= 10
    expected = [(gifter.id, coins) for coins, gifter in enumerate(gifters, start=1)][::-1]
    assert top == expected[: len(top)]


@on_shared_server
async def test_a_new_live_starts_a_new_leaderboard(shared_api: Api) -> None:
    api = shared_api
    host = await new_host(api)
    viewer = await funded_viewer(api)
    first = await api.go_live(host)
    await send_gifts(api, first["id"], viewer, [("doughnut", 1)])
    ok_json(await api.call("POST", f"/api/rooms/{first['id']}/end", host.token))
    second = await api.go_live(host)
    assert await leaderboard(api, second["id"]) == []
    assert ranking(await leaderboard(api, first["id"])) == [(viewer.id, 30)]


# --- PUT /api/rooms/{id}/goal -----------------------------------------------------------


async def put_goal(api: Api, room_id: int, user: User, body: Any) -> Any:
    return await api.call("PUT", f"/api/rooms/{room_id}/goal", user.token, json=body)


@on_shared_server
async def test_goal_progress_counts_the_coins_gifted_after_it_was_set(shared_api: Api) -> None:
    api = shared_api
    host = await new_host(api)
    viewer = await funded_viewer(api)
    room = await api.go_live(host)
    rid = room["id"]
    assert (await get_room(api, rid)).get("goal") is None

    await send_gifts(api, rid, viewer, [("hand_hearts", 1)])  # before the goal: not counted
    ok_json(await put_goal(api, rid, host, {"title": "new mic", "coins": 500}))
    assert (await get_room(api, rid))["goal"] == {"title": "new mic", "coins": 500, "progress": 0}

    await send_gifts(api, rid, viewer, [("doughnut", 1), ("finger_heart", 1)])
    assert (await get_room(api, rid))["goal"] == {
        "title": "new mic",
        "coins": 500,
        "progress": 35,
    }

    # A new goal starts again from zero.
    ok_json(await put_goal(api, rid, host, {"title": "new camera", "coins": 1000}))
    assert (await get_room(api, rid))["goal"]["progress"] == 0
    await send_gifts(api, rid, viewer, [("rose", 3)])
    assert (await get_room(api, rid))["goal"] == {
        "title": "new camera",
        "coins": 1000,
        "progress": 3,
    }


@on_shared_server
async def test_only_the_host_sets_a_goal(shared_api: Api) -> None:
    api = shared_api
    host = await new_host(api)
    viewer = await funded_viewer(api)
    room = await api.go_live(host)
    r = await put_goal(api, room["id"], viewer, {"title": "hijack", "coins": 10})
    assert_error(r, 403, "forbidden")
    assert (await get_room(api, room["id"])).get("goal") is None


@on_shared_server
@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"title": "t", "coins": 1}, id="1-coin"),
        pytest.param({"title": "t" * 100, "coins": 10**6}, id="100-char-title"),
    ],
)
async def test_a_goal_of_a_positive_integer_and_a_1_to_100_char_title_is_accepted(
    shared_api: Api, body: dict[str, Any]
) -> None:
    host = await new_host(shared_api)
    room = await shared_api.go_live(host)
    ok_json(await put_goal(shared_api, room["id"], host, body))
    goal = (await get_room(shared_api, room["id"]))["goal"]
    assert goal == {"title": body["title"], "coins": body["coins"], "progress": 0}


@on_shared_server
@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"title": "goal", "coins": 0}, id="coins-0"),
        pytest.param({"title": "goal", "coins": -5}, id="coins-negative"),
        pytest.param({"title": "goal", "coins": 1.5}, id="coins-fraction"),
        pytest.param({"title": "goal", "coins": 100.0}, id="coins-float"),
        pytest.param({"title": "goal", "coins": True}, id="coins-bool"),
        pytest.param({"title": "goal", "coins": "100"}, id="coins-string"),
        pytest.param({"title": "goal", "coins": None}, id="coins-null"),
        pytest.param({"title": "goal", "coins": [100]}, id="coins-list"),
        pytest.param({"title": "goal"}, id="coins-missing"),
        pytest.param({"title": "", "coins": 100}, id="title-empty"),
        pytest.param({"title": "   ", "coins": 100}, id="title-blank"),
        pytest.param({"title": "t" * 101, "coins": 100}, id="title-101-chars"),
        pytest.param({"title": 42, "coins": 100}, id="title-number"),
        pytest.param({"title": None, "coins": 100}, id="title-null"),
        pytest.param({"coins": 100}, id="title-missing"),
        pytest.param([{"title": "goal", "coins": 100}], id="array-body"),
    ],
)
async def test_a_bad_goal_is_invalid(shared_api: Api, body: Any) -> None:
    host = await new_host(shared_api)
    room = await shared_api.go_live(host)
    assert_error(await put_goal(shared_api, room["id"], host, body), 400, "invalid")
    assert (await get_room(shared_api, room["id"])).get("goal") is None


@on_shared_server
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"title": "goal", "coins": 1180591620717411303424}', id="coins-2**70"),
        pytest.param(b'{"title": "goal", "coins": 1e3}', id="coins-exponent"),
        pytest.param(b'{"title": "goal", "coins": 100', id="truncated"),
        pytest.param(b"", id="empty"),
    ],
)
async def test_a_goal_body_that_is_not_a_sound_json_goal_is_invalid(
    shared_api: Api, body: bytes
) -> None:
    host = await new_host(shared_api)
    room = await shared_api.go_live(host)
    r = await shared_api.call(
        "PUT",
        f"/api/rooms/{room['id']}/goal",
        host.token,
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert_error(r, 400, "invalid")
    assert (await get_room(shared_api, room["id"])).get("goal") is None


# --- POST /api/rooms/{id}/overlay_token -------------------------------------------------


@on_shared_server
async def test_a_new_overlay_token_replaces_the_old_one(shared_api: Api) -> None:
    api = shared_api
    host = await new_host(api)
    viewer = await funded_viewer(api)
    room = await api.go_live(host)
    rid, old = room["id"], room["overlay_token"]

    r = await api.call("POST", f"/api/rooms/{rid}/overlay_token", viewer.token)
    assert_error(r, 403, "forbidden")

    async with api.room(rid, old, overlay=True) as connected:
        welcome = await connected.recv_type("welcome")
        assert "you" not in welcome
        doc = ok_json(await api.call("POST", f"/api/rooms/{rid}/overlay_token", host.token))
        new = doc["overlay_token"]
        assert isinstance(new, str) and new and new != old
        assert (await connected.closed())[0] == 4401, "sockets of the old token close"

    async with api.room(rid, old, overlay=True) as stale:
        assert (await stale.closed())[0] == 4401, "the old token no longer opens"
    async with api.room(rid, new, overlay=True) as fresh:
        welcome = await fresh.recv()
        assert welcome["type"] == "welcome" and welcome["room"]["id"] == rid

    # Rotating again retires the second token as well.
    newer = ok_json(await api.call("POST", f"/api/rooms/{rid}/overlay_token", host.token))
    async with api.room(rid, new, overlay=True) as retired:
        assert (await retired.closed())[0] == 4401
    async with api.room(rid, newer["overlay_token"], overlay=True) as fresh:
        assert (await fresh.recv())["type"] == "welcome"


@on_shared_server
async def test_an_overlay_token_opens_only_its_own_room(shared_api: Api) -> None:
    first = await shared_api.go_live(await new_host(shared_api))
    second = await shared_api.go_live(await new_host(shared_api))
    async with shared_api.room(second["id"], first["overlay_token"], overlay=True) as ws:
        assert (await ws.closed())[0] == 4401
