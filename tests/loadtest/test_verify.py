"""The verifier's rules on a small consistent run, and each way it can disagree."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from server.loadtest.records import StreamRecord
from server.loadtest.verify import RoomRun, RunRecord, ServerView, check

# Room 7: alice (2) sends 3 roses in a streak, bob (3) a corgi; the streak ends; the room ends.
ACKS = [
    (7, 2, "r-2-1", 1, "rose", 1, 1, 1),
    (7, 2, "r-2-2", 2, "rose", 1, 1, 1),
    (7, 3, "r-3-1", 3, "corgi", 1, 299, 299),
    (7, 2, "r-2-3", 4, "rose", 1, 1, 1),
]
EVENTS = [
    (1, "gift", 2, "rose", 1, 1, 1),
    (2, "gift", 2, "rose", 1, 1, 1),
    (3, "gift", 3, "corgi", 1, 299, 299),
    (4, "gift", 2, "rose", 1, 1, 1),
    (5, "streak_end", 0, "", 0, 0, 0),
    (6, "room_ended", 0, "", 0, 0, 0),
]


def ledger_item(ack: tuple[Any, ...], transfer: int) -> dict[str, Any]:
    _room, sender, rid, seq, gift, count, coins, diamonds = ack
    return {
        "transfer": transfer,
        "sender": {"id": sender, "name": f"u{sender}"},
        "request_id": rid,
        "seq": seq,
        "gift_id": gift,
        "count": count,
        "coins": coins,
        "diamonds": diamonds,
    }


def consistent() -> tuple[RunRecord, dict[str, Any]]:
    record = RunRecord(
        "http://127.0.0.1:1",
        [RoomRun(7, 1, "host-token")],
        list(ACKS),
        [],
        [
            StreamRecord(7, "viewer 10", 0, list(EVENTS), ended=True),
            StreamRecord(7, "overlay 7", 2, list(EVENTS[2:]), ended=True),  # joined late
        ],
    )
    server = {
        "audit": {"balanced": True},
        "ledger": {7: [ledger_item(a, 100 + k) for k, a in enumerate(ACKS)]},
        "final_seq": {7: 6},
        "host_diamonds": {7: 302},
    }
    return record, server


def view(server: dict[str, Any]) -> ServerView:
    return ServerView(
        server["audit"], server["ledger"], server["final_seq"], server["host_diamonds"]
    )


def test_a_consistent_run_passes() -> None:
    record, server = consistent()
    result = check(record, view(server))
    assert result.passed, result.problems
    assert result.checked == {
        "acknowledged gifts": 4,
        "ledger gifts": 4,
        "sampled streams": 2,
        "stream events": 10,
    }


def test_the_record_survives_json() -> None:
    record, server = consistent()
    again = RunRecord.from_json(record.to_json())
    assert again == record
    assert check(again, view(server)).passed


Mutation = Callable[[RunRecord, dict[str, Any]], None]


def _unbalanced(r: RunRecord, s: dict[str, Any]) -> None:
    s["audit"] = {"balanced": False, "violations": [{"rule": "asset_sums_to_zero"}]}


def _ack_missing_from_ledger(r: RunRecord, s: dict[str, Any]) -> None:
    del s["ledger"][7][2]
    s["host_diamonds"][7] = 3


def _ledger_twice(r: RunRecord, s: dict[str, Any]) -> None:
    s["ledger"][7].append(dict(s["ledger"][7][0], transfer=200))
    s["host_diamonds"][7] = 303


def _ledger_unacknowledged(r: RunRecord, s: dict[str, Any]) -> None:
    s["ledger"][7].append(ledger_item((7, 9, "rogue-1", 7, "rose", 1, 1, 1), 300))
    s["host_diamonds"][7] = 303


def _ledger_without_request(r: RunRecord, s: dict[str, Any]) -> None:
    s["ledger"][7][0]["request_id"] = None


def _ledger_other_amount(r: RunRecord, s: dict[str, Any]) -> None:
    s["ledger"][7][2]["diamonds"] = 298
    s["host_diamonds"][7] = 301


def _host_balance(r: RunRecord, s: dict[str, Any]) -> None:
    s["host_diamonds"][7] = 301


def _stream_missing(r: RunRecord, s: dict[str, Any]) -> None:
    del r.streams[0].events[2]


def _stream_doubled(r: RunRecord, s: dict[str, Any]) -> None:
    r.streams[0].events.insert(2, r.streams[0].events[1])


def _stream_out_of_order(r: RunRecord, s: dict[str, Any]) -> None:
    e = r.streams[0].events
    e[1], e[2] = e[2], e[1]


def _stream_wrong_sender(r: RunRecord, s: dict[str, Any]) -> None:
    r.streams[1].events[1] = (4, "gift", 3, "rose", 1, 1, 1)


def _stream_never_ended(r: RunRecord, s: dict[str, Any]) -> None:
    r.streams[0].events.pop()
    r.streams[0].ended = False


def _stream_resynced(r: RunRecord, s: dict[str, Any]) -> None:
    r.streams[0].resynced = True


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_unbalanced, "/api/admin/audit is not balanced"),
        (
            _ack_missing_from_ledger,
            "acknowledged request 'r-3-1' of sender 3 (seq 3, 1 x corgi)"
            " is missing from the ledger",
        ),
        (_ledger_twice, "request 'r-2-1' of sender 2 (seq 1, 1 x rose) is in the ledger 2 times"),
        (
            _ledger_unacknowledged,
            "the ledger holds gift request 'rogue-1' of sender 9"
            " (transfers [300]) that was never acknowledged to the run",
        ),
        (_ledger_without_request, "ledger gift transfer 100 has no request id"),
        (_ledger_other_amount, "the ledger holds (3, 'corgi', 1, 299, 298)"),
        (_host_balance, "the host holds 301 diamonds, the room's ledger credits 302"),
        (_stream_missing, "viewer 10: saw seqs 1..6 (5 events), expected 1..6; missing [3]"),
        (_stream_doubled, "doubled [2]"),
        (_stream_out_of_order, "first out of order at 2"),
        (_stream_wrong_sender, "overlay 7: request 'r-2-3' of sender 2 (seq 4, 1 x rose) arrived"),
        (_stream_never_ended, "viewer 10: never saw room_ended (seq 6)"),
        (_stream_resynced, "viewer 10: was told to resync"),
    ],
)
def test_each_disagreement_fails_with_a_sentence(mutate: Mutation, message: str) -> None:
    record, server = consistent()
    record, server = copy.deepcopy(record), copy.deepcopy(server)
    mutate(record, server)
    result = check(record, view(server))
    assert not result.passed
    assert any(message in p for p in result.problems), result.problems


def test_an_unanswered_request_may_be_in_the_ledger_once() -> None:
    record, server = consistent()
    record.acks.pop()  # r-2-3 was sent, committed, but its answer never came
    record.unresolved.append((7, 2, "r-2-3"))
    record.streams = [s for s in record.streams if s.start_seq > 3]  # none saw seq 4 as acked
    assert check(record, view(server)).passed
    server["ledger"][7].append(dict(server["ledger"][7][3], transfer=400))
    server["host_diamonds"][7] = 303
    problems = check(record, view(server)).problems
    assert any("unanswered 'r-2-3' is in the ledger 2 times" in p for p in problems), problems
