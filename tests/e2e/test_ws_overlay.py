"""The overlay socket: the room's events for an OBS browser source, read-only, not a viewer."""

from __future__ import annotations

from tests.e2e.ws_helpers import (
    assert_error,
    assert_open,
    numbered,
    overlay_url,
    refusal_code,
    stage,
    until,
    until_closed,
    welcome,
    with_settings,
)
from tests.support.client import Api


async def test_an_overlay_sees_the_same_room_events_as_a_viewer(api: Api) -> None:
    s = await stage(api, ["alice"])
    alice = s.viewers[0]
    async with (
        api.room(s.id, alice.token) as viewer,
        api.room(s.id, s.overlay_token, overlay=True) as overlay,
    ):
        await welcome(viewer)
        await welcome(overlay)
        await viewer.gift("g1", "rose", 2)
        await viewer.gift("g2", "confetti")
        seen_by_viewer = await numbered(viewer, 3)
        seen_by_overlay = await numbered(overlay, 3)
    assert [e["type"] for e in seen_by_overlay] == ["gift", "streak_end", "gift"]
    assert seen_by_overlay == seen_by_viewer


async def test_an_overlay_cannot_send_gifts(api: Api) -> None:
    s = await stage(api, ["alice"])
    async with (
        api.room(s.id, s.host.token) as host_ws,
        api.room(s.id, s.overlay_token, overlay=True) as overlay,
    ):
        await welcome(host_ws)
        await welcome(overlay)
        assert_error(await overlay.gift("o1", "rose"), "forbidden", "o1")
        await assert_open(overlay)
        await overlay.send({"type": "nonsense"})
        assert_error(await overlay.recv_type("error"), "invalid", None)
        await assert_open(overlay)
    r = await api.call("GET", f"/api/rooms/{s.id}")
    assert r.json()["seq"] == 0, r.text
    assert (await api.me(s.host))["diamonds"] == 0


@with_settings(room_update_interval_ms=200)
async def test_an_overlay_is_not_counted_as_a_viewer(api: Api) -> None:
    s = await stage(api, ["alice"])
    async with api.room(s.id, s.host.token) as host_ws:
        assert (await welcome(host_ws))["viewers"] == 0
        async with (
            api.room(s.id, s.overlay_token, overlay=True) as o1,
            api.room(s.id, s.overlay_token, overlay=True) as o2,
        ):
            assert (await welcome(o1))["viewers"] == 0
            assert (await welcome(o2))["viewers"] == 0
            async with api.room(s.id, s.viewers[0].token) as viewer:
                assert (await welcome(viewer))["viewers"] == 1
                seen = await until(host_ws, lambda d: d["type"] == "viewers")
                assert seen[-1] == {"type": "viewers", "count": 1}
                r = await api.call("GET", f"/api/rooms/{s.id}")
                assert r.json()["viewers"] == 1, r.text


async def test_rotating_the_overlay_token_closes_its_sockets_4401_and_only_theirs(
    api: Api,
) -> None:
    s = await stage(api, ["alice"])
    async with (
        api.room(s.id, s.viewers[0].token) as viewer,
        api.room(s.id, s.overlay_token, overlay=True) as o1,
        api.room(s.id, s.overlay_token, overlay=True) as o2,
    ):
        for sock in (viewer, o1, o2):
            await welcome(sock)
        r = await api.call("POST", f"/api/rooms/{s.id}/overlay_token", s.host.token)
        assert r.status_code == 200, r.text
        fresh = r.json()["overlay_token"]
        assert fresh != s.overlay_token
        for sock in (o1, o2):
            _, code = await until_closed(sock)
            assert code == 4401
        await assert_open(viewer)
        assert await refusal_code(overlay_url(api, s.id, s.overlay_token)) == 4401
        async with api.room(s.id, fresh, overlay=True) as o3:
            await welcome(o3)
            await viewer.gift("g1", "confetti")
            (event,) = await numbered(o3, 1)
            assert event["sender"]["name"] == "alice"


async def test_only_the_host_can_rotate_the_overlay_token(api: Api) -> None:
    s = await stage(api, ["alice"])
    async with api.room(s.id, s.overlay_token, overlay=True) as overlay:
        await welcome(overlay)
        r = await api.call("POST", f"/api/rooms/{s.id}/overlay_token", s.viewers[0].token)
        assert r.status_code == 403, r.text
        await assert_open(overlay)
