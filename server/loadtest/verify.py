"""The run checked against the server: pure rules over what the run saw and what the
server's ledger says (`check`), and the record that lets a run be checked again later.

The checks, each failing with a sentence that names the room, the sender and the request:

1. `GET /api/admin/audit` is balanced.
2. Every gift acknowledged to a client (`gift_ok`) is in the room's ledger exactly once, with
   the acknowledged seq, gift, count, coins and diamonds.
3. Every gift transfer in the ledger of a run's room was acknowledged to the run (or is one of
   the few requests still unanswered when the run ended, which the ledger may hold once).
4. Every sampled viewer's and overlay's stream of a room holds each seq exactly once, in
   order, from where it joined to the room's `room_ended`; every acknowledged gift's seq is
   there with the right sender, gift, count, coins and diamonds; every gift event in it is a
   ledger transfer with that seq.
5. The diamonds credited (the host's balance, and the ledger's diamond legs) equal the
   diamonds of the room's gift events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.loadtest.records import Ack, StreamEvent, StreamRecord

PROBLEMS_SHOWN_MAX = 40


@dataclass(frozen=True, slots=True)
class RoomRun:
    id: int
    host: int
    host_token: str


@dataclass(slots=True)
class RunRecord:
    """What the run saw: enough to check it against the server now or later."""

    base_url: str
    rooms: list[RoomRun]
    acks: list[Ack] = field(default_factory=list)
    unresolved: list[tuple[int, int, str]] = field(default_factory=list)
    streams: list[StreamRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "rooms": [{"id": r.id, "host": r.host, "host_token": r.host_token} for r in self.rooms],
            "acks": [list(a) for a in self.acks],
            "unresolved": [list(u) for u in self.unresolved],
            "streams": [
                {
                    "room": s.room,
                    "who": s.who,
                    "start_seq": s.start_seq,
                    "resynced": s.resynced,
                    "ended": s.ended,
                    "events": [list(e) for e in s.events],
                }
                for s in self.streams
            ],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RunRecord:
        def ack(a: Sequence[Any]) -> Ack:
            return (
                int(a[0]),
                int(a[1]),
                str(a[2]),
                int(a[3]),
                str(a[4]),
                int(a[5]),
                int(a[6]),
                int(a[7]),
            )

        def event(e: Sequence[Any]) -> StreamEvent:
            return (int(e[0]), str(e[1]), int(e[2]), str(e[3]), int(e[4]), int(e[5]), int(e[6]))

        return cls(
            base_url=str(doc["base_url"]),
            rooms=[
                RoomRun(int(r["id"]), int(r["host"]), str(r["host_token"])) for r in doc["rooms"]
            ],
            acks=[ack(a) for a in doc["acks"]],
            unresolved=[(int(u[0]), int(u[1]), str(u[2])) for u in doc["unresolved"]],
            streams=[
                StreamRecord(
                    int(s["room"]),
                    str(s["who"]),
                    int(s["start_seq"]),
                    [event(e) for e in s["events"]],
                    bool(s["resynced"]),
                    bool(s["ended"]),
                )
                for s in doc["streams"]
            ],
        )


@dataclass(frozen=True, slots=True)
class ServerView:
    """What the server says after the run."""

    audit: Mapping[str, Any]
    ledger: Mapping[int, Sequence[Mapping[str, Any]]]  # room -> GET /api/admin/rooms/{id}/gifts
    final_seq: Mapping[int, int]  # room -> its seq once ended
    host_diamonds: Mapping[int, int]  # room -> its host's diamonds (GET /api/me)


@dataclass(slots=True)
class Verification:
    problems: list[str]
    checked: dict[str, int]

    @property
    def passed(self) -> bool:
        return not self.problems


def _ack_text(a: Ack) -> str:
    return f"request {a[2]!r} of sender {a[1]} (seq {a[3]}, {a[5]} x {a[4]})"


def check(record: RunRecord, server: ServerView) -> Verification:
    checked: Counter[str] = Counter()
    problems = list(_check_audit(server.audit))
    unresolved = {(u[1], u[2]) for u in record.unresolved}
    acks_by_room: dict[int, list[Ack]] = {r.id: [] for r in record.rooms}
    for a in record.acks:
        if a[0] not in acks_by_room:
            problems.append(f"{_ack_text(a)} was acknowledged in room {a[0]}, not a run's room")
            continue
        acks_by_room[a[0]].append(a)
    streams_by_room: dict[int, list[StreamRecord]] = {}
    for s in record.streams:
        streams_by_room.setdefault(s.room, []).append(s)
    for room in record.rooms:
        ledger = server.ledger.get(room.id, [])
        acks = acks_by_room[room.id]
        checked["acknowledged gifts"] += len(acks)
        checked["ledger gifts"] += len(ledger)
        problems += _check_ledger(room.id, acks, ledger, unresolved)
        diamonds = sum(int(item["diamonds"]) for item in ledger)
        if server.host_diamonds.get(room.id) != diamonds:
            problems.append(
                f"room {room.id}: the host holds {server.host_diamonds.get(room.id)} diamonds,"
                f" the room's ledger credits {diamonds}"
            )
        final = server.final_seq.get(room.id, -1)
        for stream in streams_by_room.get(room.id, []):
            checked["sampled streams"] += 1
            checked["stream events"] += len(stream.events)
            problems += _check_stream(stream, final, acks, ledger)
    return Verification(problems, dict(checked))


def _check_audit(audit: Mapping[str, Any]) -> Iterator[str]:
    if audit.get("balanced") is not True:
        violations = audit.get("violations") or []
        yield f"/api/admin/audit is not balanced: {violations!r}"[:500]


def _check_ledger(
    room: int,
    acks: Sequence[Ack],
    ledger: Sequence[Mapping[str, Any]],
    unresolved: set[tuple[int, str]],
) -> Iterator[str]:
    by_request: dict[tuple[int, str], list[Mapping[str, Any]]] = {}
    for item in ledger:
        if item.get("request_id") is None:
            yield f"room {room}: ledger gift transfer {item['transfer']} has no request id"
            continue
        key = (int(item["sender"]["id"]), str(item["request_id"]))
        by_request.setdefault(key, []).append(item)
    acked: set[tuple[int, str]] = set()
    for a in acks:
        key = (a[1], a[2])
        if key in acked:
            yield f"room {room}: {_ack_text(a)} was acknowledged twice with different answers"
            continue
        acked.add(key)
        found = by_request.get(key, [])
        if not found:
            yield f"room {room}: acknowledged {_ack_text(a)} is missing from the ledger"
            continue
        if len(found) > 1:
            yield f"room {room}: {_ack_text(a)} is in the ledger {len(found)} times"
        item = found[0]
        want = (a[3], a[4], a[5], a[6], a[7])
        got = (item["seq"], item["gift_id"], item["count"], item["coins"], item["diamonds"])
        if tuple(got) != want:
            yield (
                f"room {room}: {_ack_text(a)} was acknowledged as (seq, gift, count, coins,"
                f" diamonds) {want}, the ledger holds {tuple(got)}"
            )
    for key, items in by_request.items():
        if key in acked:
            continue
        if key in unresolved:
            if len(items) > 1:
                yield f"room {room}: unanswered {key[1]!r} is in the ledger {len(items)} times"
            continue
        transfers = [int(i["transfer"]) for i in items]
        yield (
            f"room {room}: the ledger holds gift request {key[1]!r} of sender {key[0]}"
            f" (transfers {transfers}) that was never acknowledged to the run"
        )


def _check_stream(
    stream: StreamRecord,
    final_seq: int,
    acks: Sequence[Ack],
    ledger: Sequence[Mapping[str, Any]],
) -> Iterator[str]:
    where = f"room {stream.room}, {stream.who}"
    if stream.resynced:
        yield f"{where}: was told to resync (history no longer reached); its stream is partial"
        return
    seqs = [e[0] for e in stream.events]
    expected = list(range(stream.start_seq + 1, final_seq + 1))
    if seqs != expected:
        counts = Counter(seqs)
        doubled = sorted(s for s, n in counts.items() if n > 1)[:5]
        missing = sorted(set(expected) - set(seqs))[:5]
        disorder = next((i for i in range(1, len(seqs)) if seqs[i] <= seqs[i - 1]), None)
        yield (
            f"{where}: saw seqs {stream.start_seq + 1}..{seqs[-1] if seqs else '-'}"
            f" ({len(seqs)} events), expected {stream.start_seq + 1}..{final_seq};"
            f" missing {missing}, doubled {doubled},"
            f" first out of order at {None if disorder is None else seqs[disorder]}"
        )
    if not stream.ended:
        yield f"{where}: never saw room_ended (seq {final_seq})"
    by_seq = {e[0]: e for e in stream.events}
    for a in acks:
        if a[3] <= stream.start_seq:
            continue
        e = by_seq.get(a[3])
        want: StreamEvent = (a[3], "gift", a[1], a[4], a[5], a[6], a[7])
        if e != want:
            yield f"{where}: {_ack_text(a)} arrived as {e}, expected {want}"
    ledger_by_seq = {item["seq"]: item for item in ledger}
    for e in stream.events:
        if e[1] != "gift":
            continue
        item = ledger_by_seq.get(e[0])
        if item is None:
            yield f"{where}: gift event seq {e[0]} has no transfer in the ledger"
            continue
        got = (
            item["sender"]["id"],
            item["gift_id"],
            item["count"],
            item["coins"],
            item["diamonds"],
        )
        if tuple(got) != e[2:]:
            yield f"{where}: gift event seq {e[0]} says {e[2:]}, the ledger {tuple(got)}"
    gift_diamonds = sum(e[6] for e in stream.events if e[1] == "gift")
    if stream.start_seq == 0 and not stream.resynced:
        credited = sum(int(item["diamonds"]) for item in ledger)
        if gift_diamonds != credited:
            yield f"{where}: its gift events carry {gift_diamonds} diamonds, the ledger {credited}"
