"""The run: set-up, the workers, the clock, the end, verification and the reports.

    set up       our own server (no --url) or the target's /healthz; hosts sign up and go live
                 (rooms in popularity order); people are planned per room by Zipf shares and
                 dealt to the workers
    ramp         workers sign their people up, buy coins, open every socket: `ready`
    gifting      `go`; each second the workers' ticks are merged into a `Second`, shown live,
                 and checked for a saturated worker; bounded by --duration
    drain        `stop`: senders answer or give up on what is pending (bounded)
    end          the hosts end their rooms; `finish`: clients read to `room_ended`
    verify       the ledger, the audit and the hosts' balances against what the run saw
    report       summary table, report.json, report.html, record.json in --out

Exit status: 0 the run passed verification, 1 it did not (or a worker failed), 2 it could not
run (bad arguments, the server did not start, set-up failed).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import multiprocessing as mp
import os
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_pipes
from pathlib import Path
from typing import Any

import orjson

from server.loadtest import report, serverproc, worker
from server.loadtest.http import Api, HttpError
from server.loadtest.model import apportion, gifts_from_catalog, zipf_weights
from server.loadtest.progress import Progress
from server.loadtest.records import StreamRecord
from server.loadtest.scenario import Scenario
from server.loadtest.stats import COUNTERS, Histogram, Second
from server.loadtest.verify import (
    PROBLEMS_SHOWN_MAX,
    RoomRun,
    RunRecord,
    ServerView,
    Verification,
    check,
)

SATURATED_CORES = 0.9
SATURATED_SECONDS = 3
PHASE_TIMEOUT_S = 180.0
HOST_BIRTHDATE = "1985-06-15"


class RunFailed(Exception):
    """The run could not go on (exit status 2 before gifting, 1 after)."""


@dataclass(frozen=True, slots=True)
class Options:
    scenario: Scenario
    url: str | None  # None: start our own server
    admin_token: str
    out_dir: Path


@dataclass(slots=True)
class Run:
    options: Options
    progress: Progress
    api: Api
    server_pid: int | None
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    seconds: list[Second] = field(default_factory=list)
    setup: Second = field(default_factory=lambda: Second(-1))
    errors: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    hot: Counter[int] = field(default_factory=Counter)
    started_at: str = ""


def run(options: Options, progress: Progress) -> int:
    s = options.scenario
    own: serverproc.OwnServer | None = None
    if options.url is None:
        progress.say("starting our own server on a temporary database ...")
        try:
            own = serverproc.start(s.clients + 100)
        except serverproc.ServerStartError as exc:
            progress.say(f"giftcast loadtest: {exc}")
            return 2
        base_url, token, pid = own.base_url, own.admin_token, own.pid
    else:
        base_url, token, pid = options.url, options.admin_token, None
    the_run = Run(options, progress, Api(base_url, token), pid)
    try:
        return _run(the_run)
    except RunFailed as exc:
        progress.say(f"giftcast loadtest: FAILED: {exc}")
        if own is not None:
            progress.say(f"--- server log tail ---\n{own.log_tail()}")
        return 2 if not the_run.seconds else 1
    finally:
        if own is not None:
            code = own.stop()
            if code not in (0, None):
                progress.say(f"giftcast loadtest: our server exited with status {code}")


def _run(r: Run) -> int:
    r.started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    rooms, plans = asyncio.run(_set_up(r))
    ctx = mp.get_context("spawn")
    pipes: list[Connection] = []
    procs = []
    for plan in plans:
        mine, theirs = ctx.Pipe(duplex=True)
        proc = ctx.Process(target=worker.main, args=(plan, theirs), name=f"loadtest-{plan.index}")
        proc.start()
        theirs.close()
        pipes.append(mine)
        procs.append(proc)
    try:
        return _drive(r, rooms, pipes)
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
            if proc.exitcode != 0:
                r.progress.say(f"giftcast loadtest: {proc.name} exited with {proc.exitcode}")


def _drive(r: Run, rooms: list[RoomRun], pipes: list[Connection]) -> int:
    s = r.options.scenario
    r.progress.say(f"workers: signing up {s.viewers:,} people, opening {s.sockets():,} sockets ...")
    sockets = sum(_collect(r, pipes, "ready", r.setup))
    r.progress.say(f"ready: {sockets:,} sockets open; gifting for {s.duration_s:g} s")
    cpu_at = _server_cpu(r)
    for p in pipes:
        p.send("go")
    start = time.monotonic()
    t = 0
    while t < math.ceil(s.duration_s):
        second = Second(t)
        until = start + t + 1
        while (left := until - time.monotonic()) > 0:
            for ready in wait_pipes(pipes, left):
                assert isinstance(ready, Connection)
                _take(r, ready.recv(), second, None)
        cpu_now = _server_cpu(r)
        if cpu_now is not None and cpu_at is not None:
            second.server_cpu = cpu_now - cpu_at
        cpu_at = cpu_now
        _close_second(r, second)
        t += 1
    r.progress.say("stopping: senders answer what is pending ...")
    for p in pipes:
        p.send("stop")
    drained: list[worker.Drained] = _collect(r, pipes, "drained", Second(t))
    r.progress.say("ending the rooms ...")
    final_seq = asyncio.run(_end_rooms(r, rooms))
    for p in pipes:
        p.send("finish")
    streams: list[list[StreamRecord]] = _collect(r, pipes, "done", Second(t + 1))
    record = RunRecord(
        r.api.base_url,
        rooms,
        [a for d in drained for a in d.acks],
        [u for d in drained for u in d.unresolved],
        [st for group in streams for st in group],
    )
    r.progress.say("verifying against the server's ledger ...")
    verification = asyncio.run(verify(r.api, record, final_seq))
    doc = build_report(r, verification, record)
    write_outputs(r, doc, record)
    return 0 if verification.passed else 1


def _collect(r: Run, pipes: list[Connection], kind: str, into: Second) -> list[Any]:
    """Wait for `kind` from every worker (ticks meanwhile go to `into`)."""
    got: dict[int, Any] = {}
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while len(got) < len(pipes):
        left = deadline - time.monotonic()
        if left <= 0:
            raise RunFailed(f"workers {sorted(set(range(len(pipes))) - set(got))} sent no {kind!r}")
        waiting = [p for i, p in enumerate(pipes) if i not in got]  # a finished one is at EOF
        for p in wait_pipes(waiting, left):
            assert isinstance(p, Connection)
            try:
                message = p.recv()
            except EOFError as exc:
                raise RunFailed(f"worker {pipes.index(p)} exited before {kind!r}") from exc
            value = _take(r, message, into, kind)
            if value is not None:
                got[pipes.index(p)] = value[0]
    if into.t >= 0:
        _close_second(r, into)
    return [got[i] for i in range(len(pipes))]


def _take(r: Run, message: Any, second: Second, kind: str | None) -> tuple[Any] | None:
    what = message[0]
    if what == "tick":
        second.add(message[1])
        return None
    if what == "failed":
        raise RunFailed(message[1])
    if what == kind:
        return (message[1],)
    raise RunFailed(f"a worker sent {what!r} while the run expected {kind or 'ticks'!r}")


def _close_second(r: Run, second: Second) -> None:
    r.seconds.append(second)
    r.errors.update(second.errors)
    r.progress.second(second, r.options.scenario.duration_s, r.errors)
    for w, cores in second.worker_cpu.items():
        r.hot[w] = r.hot[w] + 1 if cores >= SATURATED_CORES else 0
        if r.hot[w] == SATURATED_SECONDS:
            _warn(
                r,
                f"worker {w} used {cores:.2f} cores for {SATURATED_SECONDS} s in a row: the load"
                " generator may be the bottleneck (raise --workers or lower the load)",
            )
    total = sum(second.worker_cpu.values()) + (second.server_cpu or 0.0)
    cores_here = os.cpu_count() or 1
    if total >= SATURATED_CORES * cores_here and "machine" not in " ".join(r.warnings):
        _warn(
            r,
            f"the machine is saturated: {total:.2f} of {cores_here} cores busy (s {second.t})",
        )


def _warn(r: Run, text: str) -> None:
    r.warnings.append(text)
    r.progress.say(f"WARNING: {text}")


def _server_cpu(r: Run) -> float | None:
    return None if r.server_pid is None else serverproc.cpu_seconds(r.server_pid)


async def _set_up(r: Run) -> tuple[list[RoomRun], list[worker.WorkerPlan]]:
    s, api = r.options.scenario, r.api
    for _ in range(200):
        if await api.healthz():
            break
        await asyncio.sleep(0.1)
    else:
        raise RunFailed(f"{api.base_url}/healthz does not answer 200")
    try:
        await api.audit()
    except HttpError as exc:
        raise RunFailed(f"the admin token is refused ({exc}); verification needs it") from exc
    catalog = await api.catalog()
    gifts = gifts_from_catalog(catalog)
    packages = [(str(p["id"]), int(p["coins"])) for p in catalog["packages"]]
    rooms: list[RoomRun] = []
    overlay_tokens: list[str] = []
    for k in range(s.rooms):
        host, token = await api.sign_up(f"lt{r.run_id}host{k + 1}", HOST_BIRTHDATE)
        live = await api.go_live(token, f"load test {r.run_id} room {k + 1}")
        rooms.append(RoomRun(int(live["id"]), host, token))
        overlay_tokens.append(str(live["overlay_token"]))
    weights = zipf_weights(s.rooms, s.zipf_s)
    viewers = apportion(s.viewers, weights, floor=1)
    senders = apportion(s.senders, weights)
    people: list[worker.Person] = []
    for room, n, m in zip(rooms, viewers, senders, strict=True):
        m = min(m, n)
        sampled = min(n - m, max(1, round(s.sampled_fraction * n))) if s.sampled_fraction else 0
        people += [worker.Person(room.id, False, True)] * m
        people += [worker.Person(room.id, True, False)] * sampled
        people += [worker.Person(room.id, False, False)] * (n - m - sampled)
    overlays = [(rooms[k].id, overlay_tokens[k]) for k in range(s.overlays)]
    plans = [
        worker.WorkerPlan(
            index=w,
            run_id=r.run_id,
            base_url=api.base_url,
            scenario=s,
            rooms=[room.id for room in rooms],
            room_weights=weights,
            people=people[w :: s.workers],
            overlays=overlays[w :: s.workers],
            gifts=gifts,
            packages=packages,
        )
        for w in range(s.workers)
    ]
    return rooms, plans


async def _end_rooms(r: Run, rooms: list[RoomRun]) -> dict[int, int]:
    final: dict[int, int] = {}
    for room in rooms:
        await r.api.end_room(room.host_token, room.id)
        final[room.id] = int((await r.api.room(room.id))["seq"])
    return final


async def verify(api: Api, record: RunRecord, final_seq: dict[int, int] | None) -> Verification:
    """Fetch what the server says about the run's rooms and check the record against it."""
    ledger: dict[int, list[dict[str, Any]]] = {}
    hosts: dict[int, int] = {}
    finals: dict[int, int] = {}
    for room in record.rooms:
        ledger[room.id] = await api.room_gifts(room.id)
        hosts[room.id] = int((await api.me(room.host_token))["diamonds"])
        finals[room.id] = (final_seq or {}).get(room.id) or int((await api.room(room.id))["seq"])
    return check(record, ServerView(await api.audit(), ledger, finals, hosts))


def build_report(r: Run, verification: Verification, record: RunRecord) -> dict[str, Any]:
    s = r.options.scenario
    measured = [x for x in r.seconds if 0 <= x.t < math.ceil(s.duration_s)]
    everything = [r.setup, *r.seconds]
    totals: Counter[str] = Counter()
    ack, delivery = Histogram(), Histogram()
    for x in everything:
        totals.update(x.counts)
        ack.merge(x.ack_ms)
        delivery.merge(x.delivery_ms)
    span = max(1, len(measured))
    client = [sum(x.worker_cpu.values()) for x in measured]
    server = [x.server_cpu for x in measured if x.server_cpu is not None]
    return {
        "tool": "giftcast loadtest",
        "started_at": r.started_at,
        "target": r.api.base_url if r.options.url else "own server (temporary database)",
        "scenario": s.as_dict(),
        "measured_s": float(len(measured)),
        "totals": {
            **{name: totals[name] for name in COUNTERS},
            "sockets_peak": max((x.sockets for x in everything), default=0),
            "gifts_acked_per_s": round(sum(x.counts["gifts_acked"] for x in measured) / span, 1),
            "events_per_s": round(sum(x.counts["events"] for x in measured) / span, 1),
            "unresolved": len(record.unresolved),
        },
        "latency": {"ack": ack.summary(), "delivery": delivery.summary()},
        "errors": dict(r.errors.most_common()),
        "cpu": {
            "client_cores_mean": round(sum(client) / len(client), 3) if client else 0.0,
            "worker_peak_cores": round(
                max((max(x.worker_cpu.values(), default=0) for x in measured), default=0), 3
            ),
            "server_cores_mean": round(sum(server) / len(server), 3) if server else None,
            "machine_cores": os.cpu_count(),
        },
        "warnings": r.warnings,
        "verification": {
            "passed": verification.passed,
            "checked": verification.checked,
            "problems": verification.problems,
        },
        "seconds": [x.row() for x in r.seconds],
    }


def write_outputs(r: Run, doc: dict[str, Any], record: RunRecord) -> None:
    out = r.options.out_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    (out / "report.html").write_text(report.html(doc), "utf-8")
    (out / "record.json").write_bytes(orjson.dumps(record.to_json()))
    r.progress.say("\n" + report.summary_table(doc))
    show_verdict(r.progress, doc["verification"]["problems"])
    r.progress.say(f"reports: {out / 'report.json'}, {out / 'report.html'}")


def show_verdict(progress: Progress, problems: list[str]) -> None:
    if not problems:
        progress.say("VERIFICATION PASSED: the ledger, the audit and every sampled stream agree")
        return
    progress.say(f"VERIFICATION FAILED: {len(problems)} problem(s)")
    for p in problems[:PROBLEMS_SHOWN_MAX]:
        progress.say(f"  - {p}")
    if len(problems) > PROBLEMS_SHOWN_MAX:
        progress.say(f"  ... and {len(problems) - PROBLEMS_SHOWN_MAX} more in report.json")
