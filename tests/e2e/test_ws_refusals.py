"""Sockets the server will not serve: it accepts the handshake and closes at once with a
4xxx code, before sending anything. A foreign `Origin` is the one refusal at the handshake."""

from __future__ import annotations

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from tests.e2e.ws_helpers import (
    Stage,
    accepted,
    expired_token,
    overlay_url,
    refusal_code,
    room_url,
    stage,
    welcome,
    with_settings,
)
from tests.support.client import Api
from tests.support.live import LiveServer


def _forge(token: str) -> str:
    head, signature = token.rsplit(".", 1)
    return f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


def _other_user(token: str) -> str:
    _, user, expires, signature = token.split(".")
    return f"u.{int(user) + 1}.{expires}.{signature}"


def _token_case(case: str, s: Stage, live: LiveServer) -> str | None:
    token = s.viewers[0].token
    return {
        "missing": None,
        "empty": "",
        "garbage": "not-a-token",
        "forged-signature": _forge(token),
        "someone-elses-id": _other_user(token),
        "expired": expired_token(live, s.viewers[0]),
        "overlay-token": s.overlay_token,
    }[case]


async def welcome_of(api: Api, room_id: int, token: str) -> None:
    assert (await accepted(room_url(api, room_id, token)))["type"] == "welcome"


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty",
        "garbage",
        "forged-signature",
        "someone-elses-id",
        "expired",
        "overlay-token",
    ],
)
async def test_a_room_socket_without_a_valid_user_token_is_closed_4401(
    api: Api, live: LiveServer, case: str
) -> None:
    s = await stage(api, ["alice"])
    assert await refusal_code(room_url(api, s.id, _token_case(case, s, live))) == 4401


@pytest.mark.parametrize("room", ["999999", "abc", "-1", "1.5", "0x1", "%C2%B2"])
async def test_an_unknown_or_malformed_room_id_is_closed_4404(api: Api, room: str) -> None:
    s = await stage(api, ["alice"])
    assert await refusal_code(room_url(api, room, s.viewers[0].token)) == 4404


async def test_an_ended_room_is_closed_4404_for_viewers_hosts_and_overlays(api: Api) -> None:
    s = await stage(api, ["alice"])
    r = await api.call("POST", f"/api/rooms/{s.id}/end", s.host.token)
    assert r.status_code == 200, r.text
    assert await refusal_code(room_url(api, s.id, s.viewers[0].token)) == 4404
    assert await refusal_code(room_url(api, s.id, s.host.token)) == 4404
    assert await refusal_code(overlay_url(api, s.id, s.overlay_token)) == 4404


async def test_the_token_is_checked_before_the_room(api: Api) -> None:
    assert await refusal_code(room_url(api, 999999, "forged")) == 4401


@pytest.mark.parametrize("since", ["abc", "-1", "1.5", "1e3", "%20"])
async def test_a_bad_since_is_closed_4400(api: Api, since: str) -> None:
    s = await stage(api, ["alice"])
    assert await refusal_code(room_url(api, s.id, s.viewers[0].token, since=since)) == 4400
    assert await refusal_code(overlay_url(api, s.id, s.overlay_token) + f"&since={since}") == 4400


@pytest.mark.parametrize(
    "case", ["missing", "garbage", "forged", "user-token", "other-rooms-overlay-token"]
)
async def test_an_overlay_socket_without_its_rooms_overlay_token_is_closed_4401(
    api: Api, case: str
) -> None:
    s = await stage(api, ["alice"])
    other_host = await api.signup("other_host")
    other = await api.go_live(other_host, "elsewhere")
    token = {
        "missing": None,
        "garbage": "o.1.0.nope",
        "forged": _forge(s.overlay_token),
        "user-token": s.viewers[0].token,
        "other-rooms-overlay-token": other["overlay_token"],
    }[case]
    assert await refusal_code(overlay_url(api, s.id, token)) == 4401


@with_settings(connections_per_user_max=2)
async def test_a_users_third_socket_is_closed_4429(api: Api) -> None:
    s = await stage(api, ["alice", "bob"])
    alice, bob = s.viewers
    async with api.room(s.id, alice.token) as one, api.room(s.id, alice.token) as two:
        await welcome(one)
        await welcome(two)
        assert await refusal_code(room_url(api, s.id, alice.token)) == 4429
        await welcome_of(api, s.id, bob.token)  # the cap is per user


@with_settings(viewers_per_room_max=2)
async def test_a_full_room_closes_another_viewer_4429_but_lets_its_host_in(api: Api) -> None:
    s = await stage(api, ["alice", "bob", "carol"])
    alice, bob, carol = s.viewers
    async with api.room(s.id, alice.token) as a, api.room(s.id, bob.token) as b:
        await welcome(a)
        await welcome(b)
        assert await refusal_code(room_url(api, s.id, carol.token)) == 4429
        await welcome_of(api, s.id, s.host.token)


@with_settings(connections_per_ip_max=2)
async def test_an_addresses_third_socket_is_closed_4429(api: Api) -> None:
    s = await stage(api, ["alice", "bob", "carol"])
    alice, bob, carol = s.viewers
    async with api.room(s.id, alice.token) as a, api.room(s.id, bob.token) as b:
        await welcome(a)
        await welcome(b)
        assert await refusal_code(room_url(api, s.id, carol.token)) == 4429
        assert await refusal_code(overlay_url(api, s.id, s.overlay_token)) == 4429


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://localhost.evil.example",
        "http://127.0.0.1.evil.example",
        "null",
        "file://",
    ],
)
async def test_a_foreign_origin_is_refused_at_the_handshake_with_403(api: Api, origin: str) -> None:
    s = await stage(api, ["alice"])
    for url in (room_url(api, s.id, s.viewers[0].token), overlay_url(api, s.id, s.overlay_token)):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, compression=None, origin=Origin(origin)):
                pass
        assert refused.value.response.status_code == 403


@pytest.mark.parametrize(
    "origin", ["http://localhost:{port}", "http://127.0.0.1:{port}", "http://localhost", None]
)
async def test_the_servers_own_origin_and_no_origin_are_accepted(
    api: Api, live: LiveServer, origin: str | None
) -> None:
    s = await stage(api, ["alice"])
    sent = origin.format(port=live.port) if origin is not None else None
    doc = await accepted(room_url(api, s.id, s.viewers[0].token), origin=sent)
    assert doc["you"]["name"] == "alice"
    doc = await accepted(overlay_url(api, s.id, s.overlay_token), origin=sent)
    assert "you" not in doc
