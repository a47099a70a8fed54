"""Exactly once across reconnects, under load, with connections cut at random moments.

Several senders and viewers share one room. Senders pipeline gifts; viewers only watch.
Every connection is cut at a random moment by an abrupt TCP reset (no close frame): a sender
often right after sending, before its answer. A sender reconnects with `since` and resends
every request id it has no answer for, unchanged (docs/protocol.md section 7); a viewer
reconnects with `since` (or, after a `resync`, reloads). At the end:

- every request id has an answer, and every answer to the same id is the same outcome;
- each viewer saw every seq exactly once, in order, on each connection and over all of them;
- each accepted id made exactly one `gift` event, and the coins debited equal the
  acknowledged gifts (and the host's diamonds); the audit balances (the `api` fixture).

Seeded and bounded: the same cuts on every run, a few seconds in all.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from dataclasses import dataclass, field

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.ws_helpers import NUMBERED, Doc, stage, with_settings
from tests.support.client import Api

SEED = 20261124
SENDERS = 4
VIEWERS = 3
GIFTS_PER_SENDER = 40
IN_FLIGHT_MAX = 4
CUT_AFTER_SEND = 0.12  # chance that a sender's connection is cut right after a send
PRICES = {"rose": 1, "finger_heart": 5}
BUDGET_S = 60


def reset(ws: ClientConnection) -> None:
    """Cut the TCP connection at once with a reset: no close frame, nothing flushed."""
    sock = ws.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()


def flatten(raw: str | bytes) -> list[Doc]:
    doc: Doc = orjson.loads(raw)
    events: list[Doc] = doc["events"] if doc.get("type") == "batch" else [doc]
    return events


@dataclass
class Sender:
    name: str
    token: str
    plan: list[tuple[str, str, int]]  # (request id, gift id, count), in order
    answers: dict[str, list[Doc]] = field(default_factory=dict)
    pending: dict[str, Doc] = field(default_factory=dict)  # sent, not yet answered
    connections: int = 0
    cuts_with_pending: int = 0


@dataclass
class Viewer:
    token: str
    last: int = 0  # the highest seq applied
    seqs: list[int] = field(default_factory=list)  # every numbered event applied, in order
    gifts: list[Doc] = field(default_factory=list)
    resyncs: int = 0
    connections: int = 0
    ended: bool = False


async def run_sender(api: Api, room: int, s: Sender, rng: random.Random) -> None:
    todo = list(s.plan)
    last_seq = 0
    while todo or s.pending:
        s.connections += 1
        url = f"{api.ws_base}/ws/rooms/{room}?token={s.token}&since={last_seq}"
        async with connect(url, compression=None, max_size=2**24) as ws:
            try:
                welcome = orjson.loads(await ws.recv())
                assert welcome["type"] == "welcome", welcome
                for message in list(s.pending.values()):  # resend, same ids, unchanged
                    await ws.send(orjson.dumps(message).decode())
                while todo or s.pending:
                    while todo and len(s.pending) < IN_FLIGHT_MAX:
                        request_id, gift_id, count = todo.pop(0)
                        message = {"type": "gift", "id": request_id, "gift_id": gift_id}
                        message["count"] = count
                        s.pending[request_id] = message
                        await ws.send(orjson.dumps(message).decode())
                        if rng.random() < CUT_AFTER_SEND:
                            # Before the server reads it, or after the commit with the
                            # answer on its way: the client cannot tell which.
                            await asyncio.sleep(rng.random() * 0.03)
                            s.cuts_with_pending += 1
                            reset(ws)
                            raise ConnectionResetError("cut after a send")
                    for doc in flatten(await asyncio.wait_for(ws.recv(), 10)):
                        if doc.get("type") in NUMBERED:
                            last_seq = max(last_seq, doc["seq"])
                        elif doc.get("type") in ("gift_ok", "error"):
                            s.answers.setdefault(doc["id"], []).append(doc)
                            s.pending.pop(doc["id"], None)
            except (ConnectionClosed, ConnectionResetError):
                pass


async def run_viewer(
    api: Api, room: int, v: Viewer, rng: random.Random, calm: asyncio.Event
) -> None:
    while not v.ended:
        v.connections += 1
        since = f"&since={v.last}" if v.connections > 1 else ""
        url = f"{api.ws_base}/ws/rooms/{room}?token={v.token}{since}"
        cut_after = rng.randint(1, 8)  # frames on this connection before it is cut
        async with connect(url, compression=None, max_size=2**24) as ws:
            try:
                welcome = orjson.loads(await ws.recv())
                assert welcome["type"] == "welcome", welcome
                if v.connections == 1:
                    v.last = welcome["seq"]
                expected = v.last + 1  # no repeat, no gap on this connection
                frames = 0
                while not v.ended:
                    if frames >= cut_after and not calm.is_set():
                        reset(ws)
                        break
                    frames += 1
                    for doc in flatten(await asyncio.wait_for(ws.recv(), 10)):
                        if doc["type"] == "resync":
                            v.resyncs += 1  # reload: the welcome's seq is the state now
                            v.last = welcome["seq"]
                            expected = v.last + 1
                        elif doc["type"] in NUMBERED:
                            assert doc["seq"] == expected, (doc["seq"], expected, v.seqs[-5:])
                            expected += 1
                            v.last = doc["seq"]
                            v.seqs.append(doc["seq"])
                            if doc["type"] == "gift":
                                v.gifts.append(doc)
                            v.ended = doc["type"] == "room_ended"
            except ConnectionClosed:
                pass


def plan_for(name: str, rng: random.Random) -> list[tuple[str, str, int]]:
    return [
        (f"{name}-{i}", rng.choice(list(PRICES)), rng.randint(1, 3))
        for i in range(GIFTS_PER_SENDER)
    ]


@with_settings(gift_rate_per_s=10_000, gift_burst=10_000, fanout_flush_ms=20)
async def test_every_gift_has_one_outcome_and_every_viewer_sees_every_event_once(
    api: Api,
) -> None:
    rng = random.Random(SEED)
    names = [f"send{i}" for i in range(SENDERS)] + [f"view{i}" for i in range(VIEWERS)]
    s = await stage(api, names, package="coins_1321")
    senders = [Sender(u.name, u.token, plan_for(u.name, rng)) for u in s.viewers[:SENDERS]]
    viewers = [Viewer(u.token) for u in s.viewers[SENDERS:]]
    calm = asyncio.Event()
    async with asyncio.timeout(BUDGET_S):
        watching = [
            asyncio.create_task(run_viewer(api, s.id, v, random.Random(rng.random()), calm))
            for v in viewers
        ]
        await asyncio.gather(
            *(run_sender(api, s.id, x, random.Random(rng.random())) for x in senders)
        )
        calm.set()  # no more cuts: let every viewer settle on a connection, then end the live
        await asyncio.sleep(0.3)
        r = await api.call("POST", f"/api/rooms/{s.id}/end", s.host.token)
        assert r.status_code == 200, r.text
        await asyncio.gather(*watching)

    # Every request id has an answer, and every answer to it is the same outcome.
    accepted: dict[str, Doc] = {}
    for x in senders:
        assert set(x.answers) == {rid for rid, _, _ in x.plan}, "a request was never answered"
        for rid, answers in x.answers.items():
            assert all(a["type"] == "gift_ok" for a in answers), answers
            first = answers[0]
            for again in answers[1:]:
                assert (again["seq"], again["coins_spent"]) == (first["seq"], first["coins_spent"])
            accepted[rid] = first
    assert sum(x.cuts_with_pending for x in senders) >= SENDERS, "too few cuts to mean anything"

    # Each viewer saw every seq exactly once, in order (a resync would have been a reload).
    final = max(v.last for v in viewers)
    for v in viewers:
        assert v.ended and v.connections > 1
        if not v.resyncs:
            assert v.seqs == list(range(1, final + 1))
            gift_seqs = sorted(g["seq"] for g in v.gifts)
            assert gift_seqs == sorted(a["seq"] for a in accepted.values())
    # Money: what was debited is what was acknowledged, once per request id.
    spent: dict[str, int] = {}
    for x in senders:
        spent[x.name] = sum(accepted[rid]["coins_spent"] for rid, _, _ in x.plan)
        planned = sum(PRICES[gift] * count for _, gift, count in x.plan)
        assert spent[x.name] == planned
    for user in s.viewers[:SENDERS]:
        assert (await api.me(user))["coins"] == 1321 - spent[user.name]
    assert (await api.me(s.host))["diamonds"] == sum(spent.values())
    # The cuts mattered: every sender lost connections with gifts pending, and some of
    # those gifts had been committed before the cut: their resend was answered with the
    # first outcome, marked `duplicate`.
    assert all(x.connections > 1 for x in senders)
    resent = [a for x in senders for answers in x.answers.values() for a in answers]
    assert any(a.get("duplicate") is True for a in resent), "no cut fell after a commit"
