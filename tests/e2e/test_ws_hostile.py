"""Hostile frames over a real room socket, compression, tokens in logs, the rooms-per-host cap.

The frames are the shapes `tests/protocol/test_decode_hostile.py` gives the decoder: deep
nesting, huge numbers, lone surrogates, duplicate keys, megabyte strings. Over a socket
each is answered `invalid` and the socket stays open, or (over 4096 bytes) closed with 1009;
either way the room and the ledger are intact afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from tests.e2e.ws_helpers import (
    accepted,
    assert_error,
    assert_gift_ok,
    assert_open,
    stage,
    until_closed,
    until_seq,
    welcome,
    with_settings,
)
from tests.support.client import Api
from tests.support.live import ADMIN_TOKEN
from tests.support.process import ServerProcess

GIFT = '"type":"gift","id":"r1","gift_id":"rose","count":1'
INVALID_FRAMES = [
    ("nested-arrays", "[" * 2000 + "]" * 2000, None),
    ("nested-objects", '{"a":' * 600 + "1" + "}" * 600, None),
    ("nested-in-the-id", '{"type":"gift","id":' + "[" * 2000 + "]" * 2000 + "}", None),
    ("unclosed-nesting", '{"type":"gift","count":' + "[" * 4000, None),
    (
        "count-2**64",
        '{"type":"gift","id":"r1","gift_id":"rose","count":18446744073709551616}',
        None,
    ),
    (
        "count-10**400",
        '{"type":"gift","id":"r1","gift_id":"rose","count":1' + "0" * 400 + "}",
        None,
    ),
    ("count-1e999", '{"type":"gift","id":"r1","gift_id":"rose","count":1e999}', None),
    ("count-NaN", '{"type":"gift","id":"r1","gift_id":"rose","count":NaN}', None),
    ("count-1e2", '{"type":"gift","id":"r1","gift_id":"rose","count":1e2}', "r1"),
    (
        "escaped-lone-surrogate-id",
        '{"type":"gift","id":"\\ud800","gift_id":"rose","count":1}',
        None,
    ),
    ("escaped-lone-surrogate-type", '{"type":"\\udfff"}', None),
    ("duplicate-type-last-wins", '{"type":"gift","id":"r1","type":"dance"}', "r1"),
    ("duplicate-count-last-bad", "{" + GIFT + ',"count":0}', "r1"),
    ("string-of-4000-bytes-id", '{"type":"gift","id":"' + "x" * 4000 + '"}', None),
]
BINARY_FRAMES = [
    ("raw-lone-surrogate", b'{"type":"gift","id":"\xed\xa0\x80","gift_id":"rose","count":1}'),
    ("latin-1", b'{"type":"gift","id":"caf\xe9","gift_id":"rose","count":1}'),
    ("nul-bytes", b"\x00" * 100),
]


@pytest.mark.parametrize(
    ("frame", "request_id"), [pytest.param(f, rid, id=label) for label, f, rid in INVALID_FRAMES]
)
async def test_a_hostile_frame_is_answered_invalid_and_changes_nothing(
    api: Api, frame: str, request_id: str | None
) -> None:
    s = await stage(api, ["alice"])
    async with api.room(s.id, s.viewers[0].token) as ws:
        await welcome(ws)
        await ws.send_raw(frame)
        assert_error(await ws.recv_type("error"), "invalid", request_id)
        await assert_open(ws)
        assert_gift_ok(await ws.gift("after", "rose"), "after", coins_spent=1, balance=329)
        assert [e["seq"] for e in await until_seq(ws, 1)] == [1]  # no event from the frame


@pytest.mark.parametrize(("frame"), [pytest.param(f, id=label) for label, f in BINARY_FRAMES])
async def test_a_binary_frame_that_is_not_utf8_json_is_answered_invalid(
    api: Api, frame: bytes
) -> None:
    s = await stage(api, ["alice"])
    async with api.room(s.id, s.viewers[0].token) as ws:
        await welcome(ws)
        await ws.send_raw(frame)
        assert_error(await ws.recv_type("error"), "invalid", None)
        await assert_open(ws)
        assert_gift_ok(await ws.gift("after", "rose"), "after", coins_spent=1, balance=329)


async def test_duplicate_keys_in_a_gift_take_the_last_value(api: Api) -> None:
    s = await stage(api, ["alice"])
    async with api.room(s.id, s.viewers[0].token) as ws:
        await welcome(ws)
        await ws.send_raw('{"type":"gift","id":"a","gift_id":"rose","count":1,"id":"b","count":2}')
        answer = await ws.recv_type("gift_ok")
        assert_gift_ok(answer, "b", coins_spent=2, balance=328)
    assert (await api.me(s.viewers[0]))["coins"] == 328


@pytest.mark.parametrize("size", [4097, 64 * 1024, 1024 * 1024])
async def test_an_oversized_frame_closes_1009_and_the_room_goes_on(api: Api, size: int) -> None:
    s = await stage(api, ["alice", "bob"])
    alice, bob = s.viewers
    async with api.room(s.id, bob.token) as calm:
        await welcome(calm)
        async with api.room(s.id, alice.token) as ws:
            await welcome(ws)
            frame = "{" + GIFT + ',"x":"' + "é" * (size // 2) + '"}'
            assert len(frame.encode()) >= size
            await ws.send_raw(frame)
            _, code = await until_closed(ws)
        assert code == 1009
        # Nothing was debited, and the room still works for everyone.
        assert (await api.me(alice))["coins"] == 330
        await assert_open(calm)
        assert_gift_ok(await calm.gift("after", "rose"), "after", coins_spent=1, balance=329)


async def test_a_client_offering_permessage_deflate_gets_no_compression(api: Api) -> None:
    s = await stage(api, ["alice"])
    url = f"{api.ws_base}/ws/rooms/{s.id}?token={s.viewers[0].token}"
    async with connect(url, compression="deflate") as ws:
        assert ws.request is not None and ws.response is not None
        assert "permessage-deflate" in ws.request.headers.get("Sec-WebSocket-Extensions", "")
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        assert ws.protocol.extensions == []


@with_settings(rooms_per_host_max=2)
async def test_a_hosts_third_live_room_is_refused_past_a_cap_of_two(api: Api) -> None:
    host = await api.signup("busy_host")
    first = await api.go_live(host, "one")
    await api.go_live(host, "two")
    r = await api.call("POST", "/api/rooms", host.token, json={"title": "three"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    assert "2 live room(s)" in r.json()["error"]["message"]
    assert (await api.call("POST", f"/api/rooms/{first['id']}/end", host.token)).status_code == 200
    await api.go_live(host, "three, now that one ended")


async def test_tokens_never_reach_the_log_of_a_real_process(tmp_path: Path) -> None:
    server = await ServerProcess.start(
        tmp_path, {"GIFTCAST_ADMIN_TOKEN": ADMIN_TOKEN, "GIFTCAST_LOG_LEVEL": "debug"}
    )
    api = Api(server.url)
    try:
        s = await stage(api, ["alice"])
        alice = s.viewers[0]
        async with api.room(s.id, alice.token) as ws:  # uvicorn logs the accepted path
            await welcome(ws)
        async with api.room(s.id, s.overlay_token, overlay=True) as ws:
            await welcome(ws)
        refused = f"{api.ws_base}/ws/rooms/{s.id}?token={alice.token}"
        with pytest.raises(InvalidStatus):  # refused by Origin: logged with its path
            async with connect(refused, origin=Origin("https://evil.example")):
                pass
        assert (await api.call("GET", "/api/me", alice.token)).status_code == 200
        assert (await api.audit())["balanced"]
    finally:
        await api.close()
        assert await server.terminate() == 0
    log = server.log()
    assert "token=[redacted]" in log, log  # the lines are there, without their tokens
    for secret in (alice.token, s.overlay_token, ADMIN_TOKEN, alice.token.rsplit(".", 1)[1]):
        assert secret not in log, f"a token reached the log:\n{log}"


@with_settings(allowed_origins=("https://app.example", "https://studio.example/"))
async def test_an_allowlisted_origin_is_accepted_and_any_other_still_refused(api: Api) -> None:
    s = await stage(api, ["alice"])
    url = f"{api.ws_base}/ws/rooms/{s.id}?token={s.viewers[0].token}"
    for origin in ("https://app.example", "https://STUDIO.example"):
        assert (await accepted(url, origin=origin))["type"] == "welcome"
    for origin in ("https://app.example.evil", "http://app.example", "https://other.example"):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, origin=Origin(origin)):
                pass
        assert refused.value.response.status_code == 403
