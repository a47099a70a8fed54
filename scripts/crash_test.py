"""Crash test: gifts from many clients, the server killed at a random moment, then restarted.

Each round, `--clients` viewers in one live room send gifts as fast as the server answers them
(and one HTTP recharge each, with an Idempotency-Key), and at a random moment (from `--seed`)
the server process gets `--signal`: SIGKILL (a crash: power cut, OOM killer) or SIGTERM (a
graceful stop). Then it is started again on the same SQLite file and the round is checked:

- every acknowledged gift is in the ledger: its resend answers `duplicate: true` with the same
  `seq` as its first `gift_ok`;
- every request left unanswered (gift or recharge) is resent with the same id or key and gets
  exactly one outcome; after that, each viewer's coins are exactly what it bought minus what its
  acknowledged gifts cost, and the host's diamonds what those gifts paid: nothing is
  half-applied, lost or made twice;
- `GET /api/admin/audit` is balanced;
- with SIGTERM: the exit status is 0, sockets close with 1001, every error answer is
  `unavailable`, and no gift was committed without its answer reaching the client before the
  close frame (a resend of an unanswered gift is never a `duplicate`). Gifts that cross the
  server's close frame on the wire cannot be answered (nothing may follow a close frame); they
  are counted in `resent_unanswered` and each gets one outcome when resent.

    python scripts/crash_test.py                          # 20 rounds, 8 clients, SIGKILL
    python scripts/crash_test.py --rounds 5 --signal term --seed 7

Prints `name: value` figures (gifts acknowledged, rounds, lost: 0) and `result: PASS|FAIL`.
Exit 0 pass, 1 a check failed, 2 set-up failure. Loopback only; counts and durations bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import signal
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import httpx
import orjson
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.faultkit import (
    ADMIN_TOKEN,
    ANSWER_TIMEOUT_S,
    PACKAGE_COINS,
    ROSE_COINS,
    Client,
    Server,
    WriteLockHolder,
    answer,
    call,
    fill_disk,
    gift_frame,
    limit_file_size,
    mount_tmpfs,
    recharge,
    room_socket,
    unmount,
)

GIFTS_PER_ROUND_MAX = 3000  # per client: a bound on each round


@dataclass
class Figures:
    rounds: int = 0
    gifts_acknowledged: int = 0
    refused_unavailable: int = 0  # answered `unavailable` (a stopping or restarting server)
    resent_unanswered: int = 0
    committed_unanswered: int = 0  # unanswered gifts whose resend said `duplicate`
    recharges_acknowledged: int = 0
    lost: int = 0
    problems: list[str] = field(default_factory=list)


async def load(url: str, room: int, c: Client, round_no: int, stop: asyncio.Event) -> int | None:
    """Send gifts until `stop` (or the server goes away, or the bound); record every answer.
    A server still running answers what is outstanding, then the client closes. Returns the
    close code the server sent, None when the connection just died."""
    sent: dict[str, None] = {}
    answered = asyncio.Event()  # set while nothing sent is waiting for its answer
    answered.set()
    async with room_socket(url, room, c.token) as ws:
        orjson.loads(await ws.recv(decode=False))  # the welcome

        async def send_all() -> None:
            for i in range(GIFTS_PER_ROUND_MAX):
                if stop.is_set():
                    return
                request_id = f"c{c.n}-r{round_no}-{i}"
                try:
                    await ws.send(gift_frame(request_id))
                except ConnectionClosed:
                    return
                sent[request_id] = None
                answered.clear()
                await asyncio.sleep(0.002)

        async def receive_all() -> None:
            with contextlib.suppress(ConnectionClosed):
                while True:
                    doc = orjson.loads(await ws.recv(decode=False))
                    for d in doc["events"] if doc.get("type") == "batch" else [doc]:
                        if d.get("type") == "gift_ok":
                            c.acked[d["id"]] = d["seq"]
                            sent.pop(d["id"], None)
                        elif d.get("type") == "error" and "id" in d:
                            c.refused[str(d.get("code"))] += 1
                            sent.pop(d["id"], None)
                    if not sent:
                        answered.set()

        receiver = asyncio.create_task(receive_all())
        await send_all()
        quiet = asyncio.create_task(answered.wait())
        await asyncio.wait(
            {receiver, quiet}, timeout=ANSWER_TIMEOUT_S, return_when="FIRST_COMPLETED"
        )
        quiet.cancel()
        await ws.close()
        await receiver
    c.pending.extend(sent)
    rcvd = ws.protocol.close_rcvd
    return rcvd.code if rcvd is not None else None


async def recharge_during(http: httpx.AsyncClient, c: Client, key: str, delay_s: float) -> None:
    """One recharge while the signal may land: answered, or kept to be retried with its key."""
    await asyncio.sleep(delay_s)
    try:
        await recharge(http, c, key)
    except (httpx.TransportError, RuntimeError):
        c.keys_pending.append(key)


async def settle(
    url: str, room: int, clients: list[Client], fresh: dict[int, dict[str, int]], f: Figures
) -> None:
    """After a restart: resend what went unanswered (one outcome each), check that every gift
    acknowledged this round is in the ledger, and that the money adds up to the last coin."""
    async with httpx.AsyncClient(base_url=url, timeout=30, trust_env=False) as http:
        for c in clients:
            for key in c.keys_pending:
                await recharge(http, c, key)  # same key: the first answer, or the first effect
            c.keys_pending.clear()
            async with room_socket(url, room, c.token) as ws:
                orjson.loads(await ws.recv(decode=False))
                for request_id in c.pending:
                    await ws.send(gift_frame(request_id))
                    doc = await answer(ws, request_id)
                    f.resent_unanswered += 1
                    if doc["type"] != "gift_ok":
                        f.problems.append(f"resent {request_id}: {doc}")
                        continue
                    f.committed_unanswered += bool(doc.get("duplicate"))
                    c.acked[request_id] = doc["seq"]
                c.pending.clear()
                for request_id, seq in fresh[c.n].items():
                    await ws.send(gift_frame(request_id))
                    doc = await answer(ws, request_id)
                    if doc.get("duplicate") is not True or doc.get("seq") != seq:
                        f.lost += 1
                        f.problems.append(f"acknowledged {request_id} (seq {seq}): now {doc}")
            me = await call(http, "GET", "/api/me", c.token)
            expected = c.bought - ROSE_COINS * len(c.acked)
            if me["coins"] != expected:
                f.lost += abs(me["coins"] - expected)
                f.problems.append(f"client {c.n}: {me['coins']} coins, expected {expected}")
        audit = await call(http, "GET", "/api/admin/audit", ADMIN_TOKEN)
        if audit.get("balanced") is not True:
            f.problems.append(f"audit: {audit}")


async def set_up(url: str, clients_n: int) -> tuple[int, Client, list[Client]]:
    async with httpx.AsyncClient(base_url=url, timeout=30, trust_env=False) as http:
        people = []
        for n in range(clients_n + 1):
            body = {"name": f"crash{n}", "birthdate": "1990-01-01"}
            doc = (await http.post("/api/users", json=body)).json()
            people.append(Client(n, int(doc["id"]), str(doc["token"])))
        host, clients = people[0], people[1:]
        room = await call(http, "POST", "/api/rooms", host.token, json={"title": "crash test"})
        for c in clients:
            await recharge(http, c, f"c{c.n}-setup")
        return int(room["id"]), host, clients


class Fault(StrEnum):
    KILL = "kill"  # SIGKILL, then a restart
    TERM = "term"  # SIGTERM (a graceful stop), then a restart
    DISK = "disk"  # the disk is full for a while (RLIMIT_FSIZE 0); no restart
    LOCK = "lock"  # another process holds the write lock for a while; no restart
    ENOSPC = "enospc"  # the data directory is a 64 MiB tmpfs, filled for a while (needs root)


TMPFS_MIB = 64
LOCK_BUSY_TIMEOUT_MS = 100  # the server's wait for the lock in the LOCK rounds


async def provoke(fault: Fault, server: Server, hold_s: float) -> int | None:
    """Make `fault` happen to the running server; the exit status when it stopped."""
    if fault is Fault.KILL or fault is Fault.TERM:
        return await server.signal(signal.SIGKILL if fault is Fault.KILL else signal.SIGTERM)
    assert server.proc is not None
    if fault is Fault.DISK:
        limit_file_size(server.proc.pid, 0)
        try:
            await asyncio.sleep(hold_s)
        finally:
            limit_file_size(server.proc.pid, None)
    elif fault is Fault.ENOSPC:
        filler = fill_disk(server.db.parent)
        try:
            await asyncio.sleep(hold_s)
        finally:
            filler.unlink()
    else:
        holder = await WriteLockHolder.hold(server.db)
        try:
            await asyncio.sleep(hold_s)
        finally:
            await holder.release()
    await asyncio.sleep(0.3)  # the service resumes: these gifts must go through
    return None


async def run_rounds(
    workdir: Path, rounds: int, clients_n: int, seed: int, fault: Fault
) -> Figures:
    """The whole test on a server run from `workdir`; the figures, with any problems found."""
    rng = random.Random(seed)
    f = Figures()
    env = {"GIFTCAST_DB_BUSY_TIMEOUT_MS": str(LOCK_BUSY_TIMEOUT_MS)} if fault is Fault.LOCK else {}
    server = Server(workdir, env)
    if fault is Fault.ENOSPC:
        mount_tmpfs(server.db.parent, TMPFS_MIB)
    try:
        await server.start()
        room, host, clients = await set_up(server.url, clients_n)
        for r in range(rounds):
            before = {c.n: set(c.acked) for c in clients}
            stop = asyncio.Event()
            async with httpx.AsyncClient(base_url=server.url, timeout=30, trust_env=False) as http:
                moment_s = rng.uniform(0.1, 0.8)
                loads = [asyncio.create_task(load(server.url, room, c, r, stop)) for c in clients]
                buys = [
                    asyncio.create_task(
                        recharge_during(http, c, f"c{c.n}-r{r}", rng.uniform(0, moment_s * 1.2))
                    )
                    for c in clients
                ]
                await asyncio.sleep(moment_s)
                code = await provoke(fault, server, rng.uniform(0.3, 1.0))
                stop.set()
                closes = await asyncio.gather(*loads)
                await asyncio.gather(*buys)
            committed_before = f.committed_unanswered
            if fault is Fault.TERM:
                if code != 0:
                    f.problems.append(f"round {r}: exit status {code} after SIGTERM")
                if any(close != 1001 for close in closes):
                    f.problems.append(f"round {r}: close codes {closes}, expected 1001")
            if fault in (Fault.DISK, Fault.LOCK, Fault.ENOSPC) and any(c.pending for c in clients):
                f.problems.append(f"round {r}: a running server left gifts unanswered")
            fresh = {
                c.n: {i: s for i, s in c.acked.items() if i not in before[c.n]} for c in clients
            }
            if code is not None:
                await server.start()
            await settle(server.url, room, clients, fresh, f)
            if fault is not Fault.KILL and f.committed_unanswered > committed_before:
                # Committed, but its answer never reached the client: the drain missed it.
                f.problems.append(f"round {r}: a gift was committed but never answered")
            f.rounds += 1
        async with httpx.AsyncClient(base_url=server.url, timeout=30, trust_env=False) as http:
            diamonds = (await call(http, "GET", "/api/me", host.token))["diamonds"]
        f.gifts_acknowledged = sum(len(c.acked) for c in clients)
        if diamonds != f.gifts_acknowledged * ROSE_COINS:
            f.problems.append(f"host has {diamonds} diamonds for {f.gifts_acknowledged} roses")
        refused = sum((c.refused for c in clients), Counter[str]())
        f.refused_unavailable = refused.pop("unavailable", 0)
        if refused:
            f.problems.append(f"refusals other than unavailable: {dict(refused)}")
        if fault in (Fault.DISK, Fault.LOCK, Fault.ENOSPC) and not f.refused_unavailable:
            f.problems.append("the fault was never felt: no gift was answered unavailable")
        f.recharges_acknowledged = sum(c.bought for c in clients) // PACKAGE_COINS
        if await server.signal(signal.SIGTERM) != 0:
            f.problems.append("the last stop did not exit 0")
    finally:
        await server.kill()
        if fault is Fault.ENOSPC:
            unmount(server.db.parent)
    logs = server.logs()
    if "Traceback" in logs or "CRITICAL" in logs:
        f.problems.append("a traceback or a critical error in the server log")
    return f


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fault", choices=[x.value for x in Fault], default="kill")
    p.add_argument("--keep", action="store_true", help="keep the data directory and logs")
    a = p.parse_args(argv)
    if not 1 <= a.rounds <= 1000 or not 1 <= a.clients <= 200:
        p.error("--rounds 1..1000, --clients 1..200")
    fault = Fault(a.fault)
    workdir = Path(tempfile.mkdtemp(prefix="giftcast-crash-"))
    try:
        f = asyncio.run(run_rounds(workdir, a.rounds, a.clients, a.seed, fault))
    except Exception as exc:
        print(f"the crash test could not run: {exc!r} (data in {workdir})", file=sys.stderr)
        return 2
    print(f"fault: {fault.value}")
    print(f"seed: {a.seed}")
    for name, value in vars(f).items():
        if name != "problems":
            print(f"{name}: {value}")
    for problem in f.problems[:20]:
        print(f"FAIL: {problem}")
    print(f"result: {'FAIL' if f.problems else 'PASS'}")
    if a.keep or f.problems:
        print(f"data: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if f.problems else 0


if __name__ == "__main__":
    sys.exit(main())
