"""The worker processes of `bench_gifts.py`: gift senders and the checks of every answer.

A worker holds its share of the senders on one `scripts.wssend.SenderPool` (raw non-blocking
sockets on an epoll loop, not asyncio: a sender's cost per frame is a `bytes in` test unless
the frame answers it), closed loop or paced (`pace_per_s`, see `wssend`). Spawned by
`benchkit.run_workers`, it opens every socket and checks each welcome's balance, reports ready,
then runs the `Timeline` and returns a `WorkerResult`. Per answer it checks the contract:

- a `gift_ok` spends the gift's price (`coins_spent`), gives the host `coins_spent x
  diamonds_per_coin` diamonds, is no `duplicate` (every id is fresh) and names an integer `seq`
  (kept per room, for the doubled and missing seqs the parent counts);
- the balances (`coins`) a sender was acknowledged are its starting coins minus one price per
  gift: in order in the closed loop, where one gift is outstanding; as a set when paced, since
  answers to gifts in flight together may come in any order;
- an answer must name a request in flight; errors are counted by code.

Ack latency: closed loop, from the send to the answer, for answers inside the measured window;
paced, from the instant the gift was DUE to the answer, for gifts due inside the window.
"""

from __future__ import annotations

import math
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import quote

from scripts.benchkit import GIFT_ID, WS_CONNECT_CONCURRENCY, BenchError, Timeline, Violations
from scripts.wsclient import ClientError
from scripts.wssend import Sender, SenderPool

CONNECT_TIMEOUT_S = 170.0  # every sender of a worker connected and welcomed


@dataclass(frozen=True, slots=True)
class SenderPlan:
    index: int
    tag: str  # request-id prefix, unique per sender
    token: str
    room_id: str
    coins_before: int


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    worker: int
    host_port: str  # 127.0.0.1:PORT
    senders: tuple[SenderPlan, ...]
    gift_coins: int
    diamonds_per_coin: int
    pace_per_s: float  # gifts/s per sender, open loop; 0: closed loop
    total_senders: int  # over every worker: the paced senders' phases are spread over them
    in_flight_max: int  # paced: a sender's unanswered gifts


@dataclass(slots=True)
class SenderOutcome:
    index: int
    sent: int = 0
    acked: int = 0
    coins_spent: int = 0
    diamonds: int = 0
    last_balance: int | None = None
    stopped: str = ""  # why it stopped before the end, if it did
    balances: list[int] = field(default_factory=list)  # as acknowledged, in arrival order


@dataclass(slots=True)
class WorkerResult:
    worker: int
    senders: list[SenderOutcome] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)  # see the module docstring
    acked_in_window: int = 0  # gift_ok answers received inside the measured window
    errors: Counter[str] = field(default_factory=Counter)
    closed: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    violations: Violations = field(default_factory=Violations)
    room_seqs: dict[str, list[int]] = field(default_factory=dict)
    capped_sends: int = 0  # paced: gifts sent late because `in_flight_max` were unanswered
    behind_s_max: float = 0.0  # paced: the latest a gift was sent after it was due
    unsent: int = 0  # paced: gifts due before the end of sending, still not sent at the end
    cpu_s: float = 0.0  # inside the measured window


async def worker_main(plan: WorkerPlan, conn: Connection) -> WorkerResult:
    """Runs synchronously (a `SenderPool`, not asyncio): this process does nothing else."""
    res = WorkerResult(plan.worker)
    outcomes = [SenderOutcome(sp.index) for sp in plan.senders]
    res.senders = outcomes
    tl: Timeline | None = None

    def on_answer(sender: Sender, answer: dict[str, Any], origin: float | None, now: float) -> None:
        if origin is None:
            res.violations.add(f"an answer for no request in flight: {answer}")
            return
        if answer["type"] == "error":
            res.errors[str(answer.get("code"))] += 1
            return
        assert tl is not None
        check_gift_ok(plan, plan.senders[sender.slot], outcomes[sender.slot], answer, res)
        if tl.measure_from <= (origin if plan.pace_per_s else now) < tl.stop_sending:
            res.latencies_ms.append((now - origin) * 1000)
        if tl.measure_from <= now < tl.stop_sending:
            res.acked_in_window += 1

    def make(sock: socket.socket, i: int) -> Sender:
        sp = plan.senders[i]
        path = f"/ws/rooms/{quote(sp.room_id)}?token={quote(sp.token)}"
        return Sender(
            sock,
            plan.host_port,
            path,
            slot=i,
            index=sp.index,
            tag=sp.tag,
            gift_id=GIFT_ID,
            on_answer=on_answer,
        )

    pool = SenderPool(plan.host_port, plan.pace_per_s, plan.in_flight_max)
    try:
        pool.open(make, len(plan.senders), WS_CONNECT_CONCURRENCY, CONNECT_TIMEOUT_S)
        for sender, sp in zip(pool.clients, plan.senders, strict=True):
            you = (sender.welcome or {}).get("you")
            if not isinstance(you, dict) or you.get("coins") != sp.coins_before:
                res.violations.add(
                    f"welcome of sender {sp.index}: you={you!r}, coins {sp.coins_before}"
                )
        conn.send(("ready", len(pool.clients)))
        pool.idle(until=conn.poll)
        tl = conn.recv()
        assert tl is not None
        window = (tl.measure_from, tl.stop_sending)
        marks: list[float] = []

        def tick(now: float) -> None:
            if len(marks) < 2 and now >= window[len(marks)]:
                marks.append(time.process_time())

        pace, total = plan.pace_per_s, plan.total_senders
        phases = [sp.index / (total * pace) if pace else 0.0 for sp in plan.senders]
        pool.run(tl.start, tl.stop_sending, tl.end, phases, tick)
        res.cpu_s = marks[1] - marks[0] if len(marks) == 2 else 0.0
    except ClientError as exc:
        raise BenchError(str(exc)) from None
    finally:
        pool.close()
    for sender, sp, out in zip(pool.clients, plan.senders, outcomes, strict=True):
        finish(plan, tl, sender, sp, out, res)
    return res


def check_gift_ok(
    plan: WorkerPlan, sp: SenderPlan, out: SenderOutcome, answer: dict[str, Any], res: WorkerResult
) -> None:
    """The contract checks of one `gift_ok`, and its coins, diamonds and seq counted."""
    request_id = answer.get("id")
    spent, diamonds, seq = answer.get("coins_spent"), answer.get("diamonds"), answer.get("seq")
    if spent != plan.gift_coins or diamonds != spent * plan.diamonds_per_coin:
        res.violations.add(f"gift_ok {request_id}: coins_spent={spent} diamonds={diamonds}")
    if answer.get("duplicate"):
        res.violations.add(f"gift_ok {request_id}: duplicate for a fresh id")
    if not isinstance(seq, int):
        res.violations.add(f"gift_ok {request_id}: seq {seq!r}")
    else:
        res.room_seqs.setdefault(sp.room_id, []).append(seq)
    coins = answer.get("coins")
    if isinstance(coins, int) and not isinstance(coins, bool):
        out.balances.append(coins)
    else:
        res.violations.add(f"gift_ok {request_id}: balance {coins!r}")
    out.acked += 1
    out.coins_spent += spent if isinstance(spent, int) else 0
    out.diamonds += diamonds if isinstance(diamonds, int) else 0


def finish(
    plan: WorkerPlan,
    tl: Timeline | None,
    sender: Sender,
    sp: SenderPlan,
    out: SenderOutcome,
    res: WorkerResult,
) -> None:
    """One sender's end: its balances checked, what it left unanswered or unsent counted."""
    out.sent = sender.sent
    out.stopped = sender.stopped
    expected = [sp.coins_before - k * plan.gift_coins for k in range(1, len(out.balances) + 1)]
    got = out.balances if not plan.pace_per_s else sorted(out.balances, reverse=True)
    wrong = [(k, g, e) for k, (g, e) in enumerate(zip(got, expected, strict=True), 1) if g != e]
    if wrong:
        k, g, e = wrong[0]
        order = "" if not plan.pace_per_s else " (sorted)"
        res.violations.add(f"sender {sp.index}: acknowledged balance {k}{order} is {g}, not {e}")
    out.last_balance = min(out.balances) if out.balances else None
    if sender.pending:
        res.lost += len(sender.pending)
        out.stopped = out.stopped or "no answer"
    if sender.closed_with:
        res.closed[sender.closed_with] += 1
    res.capped_sends += sender.capped_sends
    res.behind_s_max = max(res.behind_s_max, sender.behind_s_max)
    stop = tl.stop_sending if tl is not None else -math.inf
    if plan.pace_per_s and not sender.stopped and sender.next_due < stop:
        res.unsent += math.ceil((stop - sender.next_due) * plan.pace_per_s)
