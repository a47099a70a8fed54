"""The benchmark viewer's accounting, fed real bytes over a real socket pair: what it counts
as delivered, skipped and repeated decides what `bench_peers.py` reports as lost."""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import Iterator

import orjson
import pytest

from scripts.wsclient import WS_GUID
from scripts.wsview import HOLES_KEPT, FrameTable, Viewer


def server_frame(payload: bytes, opcode: int = 0x1, fin: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    if len(payload) < 126:
        return bytes([first, len(payload)]) + payload
    if len(payload) < 1 << 16:
        return bytes([first, 126]) + len(payload).to_bytes(2, "big") + payload
    return bytes([first, 127]) + len(payload).to_bytes(8, "big") + payload


def gift(seq: int) -> dict[str, object]:
    return {"type": "gift", "seq": seq, "sender": {"id": 1, "name": "a"}}


def batch(*events: dict[str, object]) -> bytes:
    return orjson.dumps({"type": "batch", "events": list(events)})


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.settimeout(5)  # the test's end: never blocks for long
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def open_viewer(pair: tuple[socket.socket, socket.socket], table: FrameTable) -> Viewer:
    """A viewer past its handshake and welcome, expecting seq 1."""
    viewer = Viewer(pair[1], "127.0.0.1:1", "/viewer", table, sampled=True)
    key = viewer.request.split(b"Sec-WebSocket-Key: ")[1].split(b"\r\n")[0]
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
    response = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    viewer.feed(response + server_frame(b'{"type":"welcome","seq":0}'), 0.0)
    assert viewer.welcome == {"type": "welcome", "seq": 0}, viewer.error
    viewer.next_seq = 1
    return viewer


CASES = [
    # frames (each a list of seqs, one gift per seq; several = a batch), gaps, repeated, late
    ([[1], [2], [3]], 0, 0, 0),
    ([[1, 2, 3], [4]], 0, 0, 0),
    ([[1], [3]], 1, 0, 0),
    ([[1, 2], [5, 6]], 2, 0, 0),
    ([[1], [1]], 0, 1, 0),
    ([[1, 2, 3], [2, 3, 4]], 0, 2, 0),
    ([[1, 2, 4]], 1, 0, 0),  # a hole inside a batch
    ([[1], [3], [2]], 0, 0, 1),  # out of order: skipped, then came
    ([[1, 3, 2]], 0, 0, 1),  # out of order inside a batch
    ([[3], [1]], 1, 0, 1),  # 2 never came
    ([[1], [4], [2], [2], [3]], 0, 1, 2),  # a late event, then it again
    ([[2, 1], [3]], 0, 0, 1),
]


@pytest.mark.parametrize(("frames", "gaps", "repeated", "late"), CASES)
def test_counts_gaps_repeats_and_late_events(
    pair: tuple[socket.socket, socket.socket],
    frames: list[list[int]],
    gaps: int,
    repeated: int,
    late: int,
) -> None:
    viewer = open_viewer(pair, FrameTable())
    wire = b"".join(
        server_frame(orjson.dumps(gift(s[0])) if len(s) == 1 else batch(*map(gift, s)))
        for s in frames
    )
    viewer.feed(wire, 1.0)
    assert (viewer.gaps, viewer.repeated, viewer.late) == (gaps, repeated, late)
    assert viewer.gifts_received == sum(len(s) for s in frames)
    last = max(max(s) for s in frames)
    assert viewer.missing_after(last + 2) == gaps + 2


def test_late_events_beyond_the_remembered_holes_count_as_repeated(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    viewer = open_viewer(pair, FrameTable())
    odd = [server_frame(orjson.dumps(gift(s))) for s in range(1, 2 * HOLES_KEPT + 4, 2)]
    viewer.feed(b"".join(odd), 1.0)  # 1, 3, 5, ...: a hole before each but the first
    assert viewer.gaps == HOLES_KEPT + 1
    even = [server_frame(orjson.dumps(gift(s))) for s in range(2, 2 * HOLES_KEPT + 3, 2)]
    viewer.feed(b"".join(even), 2.0)
    assert (viewer.late, viewer.repeated, viewer.gaps) == (HOLES_KEPT, 1, 1)


def test_a_hole_split_by_a_late_event_keeps_both_sides(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    viewer = open_viewer(pair, FrameTable())
    viewer.feed(b"".join(server_frame(orjson.dumps(gift(s))) for s in (1, 6, 3, 2, 5, 4)), 1.0)
    assert (viewer.gaps, viewer.late, viewer.repeated, viewer.next_seq) == (0, 4, 0, 7)


def test_frames_split_anywhere_are_reassembled(pair: tuple[socket.socket, socket.socket]) -> None:
    viewer = open_viewer(pair, FrameTable())
    big = batch(*[gift(s) for s in range(1, 1501)])  # over 64 KiB: an 8-byte length
    assert len(big) > 1 << 16
    wire = server_frame(big) + server_frame(orjson.dumps(gift(1501)))
    for start in range(0, len(wire), 997):
        viewer.feed(wire[start : start + 997], 1.0)
    assert (viewer.gifts_received, viewer.gaps, viewer.next_seq) == (1501, 0, 1502)


def test_fragments_and_uncounted_events(pair: tuple[socket.socket, socket.socket]) -> None:
    viewer = open_viewer(pair, FrameTable())
    text = batch({"type": "viewers", "count": 3}, gift(1), {"type": "streak_end", "seq": 2})
    wire = server_frame(text[:10], fin=False) + server_frame(text[10:], opcode=0x0)
    viewer.feed(wire + server_frame(b'{"type":"top","top":[]}'), 1.0)
    assert (viewer.gifts_received, viewer.next_seq, viewer.gaps) == (1, 3, 0)


def test_window_and_latency_samples(pair: tuple[socket.socket, socket.socket]) -> None:
    table = FrameTable()
    table.window_from, table.window_to = 10.0, 20.0
    viewer = open_viewer(pair, table)
    for seq, now in ((1, 9.0), (2, 10.0), (3, 19.9), (4, 20.0)):
        viewer.feed(server_frame(orjson.dumps(gift(seq))), now)
    assert viewer.delivered_in_window == 2
    assert list(viewer.sample_times) == [9.0, 10.0, 19.9, 20.0]
    assert [table.frames[i].gift_seqs for i in viewer.sample_frames] == [(1,), (2,), (3,), (4,)]


def test_ping_is_answered_with_a_masked_pong(pair: tuple[socket.socket, socket.socket]) -> None:
    viewer = open_viewer(pair, FrameTable())
    viewer.feed(server_frame(b"hi", opcode=0x9), 1.0)
    pong = pair[0].recv(100)
    assert pong[0] == 0x8A and pong[1] == 0x80 | 2
    mask = pong[2:6]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(pong[6:])) == b"hi"


def test_close_and_refusals_are_reported(pair: tuple[socket.socket, socket.socket]) -> None:
    viewer = open_viewer(pair, FrameTable())
    viewer.feed(server_frame((1013).to_bytes(2, "big"), opcode=0x8), 1.0)
    assert viewer.closed_with == "1013" and "1013" in viewer.error
    refused = Viewer(pair[1], "127.0.0.1:1", "/x", FrameTable(), sampled=False)
    refused.feed(b"HTTP/1.1 403 Forbidden\r\n\r\n", 0.0)
    assert refused.welcome is None and "403" in refused.error
