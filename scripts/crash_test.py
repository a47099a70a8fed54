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
import os
import random
import re
import shutil
import signal
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

ADMIN_TOKEN = "crash-test-admin"
LISTENING = re.compile(rb"giftcast listening on http://127\.0\.0\.1:(\d+)")
PACKAGE_ID, PACKAGE_COINS = "coins_33035", 33035
ROSE_COINS = 1  # and 1 diamond a coin (the default catalog and rates)
GIFTS_PER_ROUND_MAX = 3000  # per client: a bound on each round
START_TIMEOUT_S = 30.0
ANSWER_TIMEOUT_S = 20.0


@dataclass
class Client:
    n: int
    user_id: int
    token: str
    bought: int = 0  # coins of acknowledged recharges
    acked: dict[str, int] = field(default_factory=dict)  # request id -> seq of its gift_ok
    pending: list[str] = field(default_factory=list)  # gift ids sent, not answered
    keys_pending: list[str] = field(default_factory=list)  # recharge keys not answered
    refused: Counter[str] = field(default_factory=Counter)  # error answers by code


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


class Server:
    """`python -m server serve` on the same data directory each time it is started."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        log_path = self.workdir / f"server-{self.starts}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTCAST_")}
        env |= {
            "GIFTCAST_ADMIN_TOKEN": ADMIN_TOKEN,
            "GIFTCAST_GIFT_RATE_PER_S": "100000",
            "GIFTCAST_GIFT_BURST": "100000",
        }
        with log_path.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "server", "serve", "--host", "127.0.0.1", "--port", "0"),
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        for _ in range(int(START_TIMEOUT_S / 0.05)):
            found = LISTENING.search(log_path.read_bytes())
            if found:
                self.url = f"http://127.0.0.1:{int(found.group(1))}"
                return
            if self.proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the server did not start:\n{log_path.read_text()[-3000:]}")

    async def signal(self, sig: signal.Signals) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return await asyncio.wait_for(self.proc.wait(), 30)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("*.log")))


async def call(http: httpx.AsyncClient, method: str, path: str, token: str, **kw: Any) -> Any:
    r = await http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)
    if r.status_code not in (200, 201):
        raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
    return r.json()


async def recharge(http: httpx.AsyncClient, c: Client, key: str) -> None:
    doc = await http.post(
        "/api/wallet/recharge",
        json={"package_id": PACKAGE_ID},
        headers={"Authorization": f"Bearer {c.token}", "Idempotency-Key": key},
    )
    if doc.status_code != 200:
        raise RuntimeError(f"recharge {key}: {doc.status_code} {doc.text[:300]}")
    c.bought += PACKAGE_COINS


async def answer(ws: ClientConnection, request_id: str) -> dict[str, Any]:
    async with asyncio.timeout(ANSWER_TIMEOUT_S):
        while True:
            doc = orjson.loads(await ws.recv(decode=False))
            for d in doc["events"] if doc.get("type") == "batch" else [doc]:
                if d.get("id") == request_id and d.get("type") in ("gift_ok", "error"):
                    return dict(d)


def room_socket(url: str, room: int, token: str) -> Any:
    ws_url = url.replace("http://", "ws://") + f"/ws/rooms/{room}?token={token}"
    return connect(ws_url, compression=None, max_size=2**24, proxy=None, close_timeout=2)


async def load(url: str, room: int, c: Client, round_no: int, stop: asyncio.Event) -> int | None:
    """Send gifts until the server goes away (or the bound); record every answer. Returns the
    close code the server sent, None when the connection just died."""
    sent: dict[str, None] = {}
    async with room_socket(url, room, c.token) as ws:
        orjson.loads(await ws.recv(decode=False))  # the welcome

        async def send_all() -> None:
            for i in range(GIFTS_PER_ROUND_MAX):
                if stop.is_set():
                    return
                request_id = f"c{c.n}-r{round_no}-{i}"
                gift = {"type": "gift", "id": request_id, "gift_id": "rose", "count": 1}
                try:
                    await ws.send(orjson.dumps(gift).decode())
                except ConnectionClosed:
                    return
                sent[request_id] = None
                await asyncio.sleep(0.002)

        sender = asyncio.create_task(send_all())
        try:
            while True:
                doc = orjson.loads(await ws.recv(decode=False))
                for d in doc["events"] if doc.get("type") == "batch" else [doc]:
                    if d.get("type") == "gift_ok":
                        c.acked[d["id"]] = d["seq"]
                        sent.pop(d["id"], None)
                    elif d.get("type") == "error" and "id" in d:
                        c.refused[str(d.get("code"))] += 1
                        sent.pop(d["id"], None)
        except ConnectionClosed:
            pass
        await sender
    c.pending.extend(sent)
    rcvd = ws.protocol.close_rcvd
    return rcvd.code if rcvd is not None else None


def gift_frame(request_id: str) -> str:
    return orjson.dumps({"type": "gift", "id": request_id, "gift_id": "rose", "count": 1}).decode()


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


async def run_rounds(
    workdir: Path, rounds: int, clients_n: int, seed: int, sig: signal.Signals
) -> Figures:
    """The whole test on a server run from `workdir`; the figures, with any problems found."""
    rng = random.Random(seed)
    f = Figures()
    server = Server(workdir)
    await server.start()
    try:
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
                code = await server.signal(sig)
                stop.set()
                closes = await asyncio.gather(*loads)
                await asyncio.gather(*buys)
            committed_before = f.committed_unanswered
            if sig is signal.SIGTERM:
                if code != 0:
                    f.problems.append(f"round {r}: exit status {code} after SIGTERM")
                if any(close != 1001 for close in closes):
                    f.problems.append(f"round {r}: close codes {closes}, expected 1001")
            fresh = {
                c.n: {i: s for i, s in c.acked.items() if i not in before[c.n]} for c in clients
            }
            await server.start()
            await settle(server.url, room, clients, fresh, f)
            if sig is signal.SIGTERM and f.committed_unanswered > committed_before:
                # A gift committed but not answered before the close frame: the drain missed it.
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
        f.recharges_acknowledged = sum(c.bought for c in clients) // PACKAGE_COINS
        if await server.signal(signal.SIGTERM) != 0:
            f.problems.append("the last stop did not exit 0")
    finally:
        await server.kill()
    if "Traceback" in server.logs():
        f.problems.append("a traceback in the server log")
    return f


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--signal", choices=["kill", "term"], default="kill")
    p.add_argument("--keep", action="store_true", help="keep the data directory and logs")
    a = p.parse_args(argv)
    if not 1 <= a.rounds <= 1000 or not 1 <= a.clients <= 200:
        p.error("--rounds 1..1000, --clients 1..200")
    sig = signal.SIGKILL if a.signal == "kill" else signal.SIGTERM
    workdir = Path(tempfile.mkdtemp(prefix="giftcast-crash-"))
    try:
        f = asyncio.run(run_rounds(workdir, a.rounds, a.clients, a.seed, sig))
    except Exception as exc:
        print(f"the crash test could not run: {exc!r} (data in {workdir})", file=sys.stderr)
        return 2
    print(f"signal: {sig.name}")
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
