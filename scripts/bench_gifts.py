"""Closed-loop gift benchmark: how many gifts a second the server acknowledges, and how fast.

What it measures
----------------
`--senders` users, each signed up and recharged with coins, are spread round-robin over
`--rooms` live rooms (each room hosted by its own user). Every sender holds one WebSocket to its
room (`/ws/rooms/{id}?token=...`) and keeps exactly one gift outstanding: it sends
`{"type": "gift", "id": ..., "gift_id": "rose", "count": 1}`, waits for the `gift_ok` or
`error` carrying that id, then sends the next. After `--warmup` seconds it measures for
`--duration` seconds: gifts acknowledged per second, and the ack latency (send to answer) as
p50 / p99 / max, measured with `time.monotonic()` in the sending process (so it includes the
load generator's own scheduling delay). Errors are counted by code. A request still without an
answer `--grace` seconds after sending stopped is lost. The server's peak RSS (VmHWM) and the
CPU seconds it used during the measured window are read from /proc.

Then it checks the money, and exits 1 loudly on any mismatch or loss:

- `GET /api/admin/audit` answers `"balanced": true`;
- per sender, the coins lost according to `GET /api/me` (before minus after) equal the sum of
  `coins_spent` acknowledged to it, and its last acknowledged balance is its balance after;
- per host, the diamonds gained equal the `diamonds` acknowledged for gifts in its room;
- no room `seq` is acknowledged twice, and every `gift_ok` is self-consistent.

How to run
----------
From the repository root, with the project installed (`pip install -e '.[dev]'`)::

    python scripts/bench_gifts.py                        # 500 senders, 50 rooms, 10 s
    python scripts/bench_gifts.py --senders 50 --rooms 5 --duration 3 --json /tmp/gifts.json

By default it starts its own server (`python -m server serve --port 0`, SQLite in a temporary
directory, the per-user gift rate limit raised to `--rate-per-user`) and stops it with SIGTERM at
the end. `--url http://127.0.0.1:PORT` targets a running server instead; its admin token is then
read from `GIFTCAST_ADMIN_TOKEN` and `--server-pid` enables the RSS / CPU figures. Only
127.0.0.1 and localhost are accepted as targets; every count and duration is bounded.

The final block prints one `name: value` per line (`gifts_per_s_acked: 5123.4`), ending with
`result: PASS` or `result: FAIL`. Exit status: 0 pass, 1 a check failed, 2 bad arguments or
set-up failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing as mp
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_connections
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
BIRTHDATE = "1990-01-01"
GIFT_ID = "rose"
WS_MAX_SIZE_BYTES = 64 * 1024 * 1024  # batch frames can be large
HTTP_CONCURRENCY = 32
WS_CONNECT_CONCURRENCY = 64
HTTP_TIMEOUT_S = 30.0
HTTP_RETRIES = 6
SERVER_LISTEN_TIMEOUT_S = 20.0
SERVER_STOP_TIMEOUT_S = 15.0
WORKERS_READY_TIMEOUT_S = 180.0
START_DELAY_S = 0.5
VIOLATIONS_KEPT = 20
LISTENING_RE = re.compile(rb"giftcast listening on http://([^\s:/]+|\[[^\]]+\]):(\d+)")

SENDERS_MAX = 10_000
ROOMS_MAX = 1_000
WORKERS_MAX = 16
DURATION_S_MAX = 120.0
WARMUP_S_MAX = 30.0
GRACE_S_MAX = 60.0
RECHARGES_MAX = 20
RATE_PER_USER_MAX = 10_000_000


class BenchError(Exception):
    """Set-up or usage failure: the benchmark could not run (exit status 2)."""


# --- arguments ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Args:
    senders: int
    rooms: int
    duration_s: float
    warmup_s: float
    grace_s: float
    workers: int
    rate_per_user: int
    recharges: int | None
    url: str | None
    server_pid: int | None
    json_path: Path | None
    settings: dict[str, str]


def parse_args(argv: Sequence[str] | None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--senders", type=int, default=500, help="gift senders (default 500)")
    p.add_argument("--rooms", type=int, default=50, help="rooms, one host each (default 50)")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first (2)")
    p.add_argument("--grace", type=float, default=5.0, help="seconds to await last answers (5)")
    p.add_argument("--workers", type=int, default=2, help="load-generator processes (2)")
    p.add_argument(
        "--rate-per-user",
        type=int,
        default=1_000_000,
        help="gifts/s and burst per user given to the server it starts (default 1000000)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        type=_setting,
        metavar="NAME=VALUE",
        help="a server setting for the server this script starts, e.g. --set fanout_flush_ms=100"
        " (becomes GIFTCAST_NAME; repeatable)",
    )
    p.add_argument("--recharges", type=int, default=None, help="recharges of the biggest package")
    p.add_argument("--url", default=None, help="target a running server (loopback only)")
    p.add_argument("--server-pid", type=int, default=None, help="pid of the --url server")
    p.add_argument("--json", dest="json_path", type=Path, default=None, help="write figures")
    ns = p.parse_args(argv)
    args = Args(
        senders=ns.senders,
        rooms=ns.rooms,
        duration_s=ns.duration,
        warmup_s=ns.warmup,
        grace_s=ns.grace,
        workers=ns.workers,
        rate_per_user=ns.rate_per_user,
        recharges=ns.recharges,
        url=ns.url,
        server_pid=ns.server_pid,
        json_path=ns.json_path,
        settings=dict(ns.set),
    )
    problems = list(argument_problems(args))
    if problems:
        p.error("; ".join(problems))
    return args


def argument_problems(a: Args) -> Iterator[str]:
    if not 1 <= a.senders <= SENDERS_MAX:
        yield f"--senders must be 1-{SENDERS_MAX}"
    if not 1 <= a.rooms <= min(ROOMS_MAX, a.senders):
        yield f"--rooms must be 1-{ROOMS_MAX} and at most --senders"
    if not 1.0 <= a.duration_s <= DURATION_S_MAX:
        yield f"--duration must be 1-{DURATION_S_MAX:g} s"
    if not 0.0 <= a.warmup_s <= WARMUP_S_MAX:
        yield f"--warmup must be 0-{WARMUP_S_MAX:g} s"
    if not 1.0 <= a.grace_s <= GRACE_S_MAX:
        yield f"--grace must be 1-{GRACE_S_MAX:g} s"
    if not 1 <= a.workers <= min(WORKERS_MAX, a.senders):
        yield f"--workers must be 1-{WORKERS_MAX} and at most --senders"
    if not 1 <= a.rate_per_user <= RATE_PER_USER_MAX:
        yield f"--rate-per-user must be 1-{RATE_PER_USER_MAX}"
    if a.recharges is not None and not 1 <= a.recharges <= RECHARGES_MAX:
        yield f"--recharges must be 1-{RECHARGES_MAX}"
    if a.url is not None:
        try:
            loopback_base_url(a.url)
        except BenchError as exc:
            yield str(exc)
    if a.server_pid is not None and a.url is None:
        yield "--server-pid only makes sense with --url"
    if a.json_path is not None and a.json_path.is_dir():
        yield "--json must name a file"


def loopback_base_url(url: str) -> str:
    """`http://127.0.0.1:PORT` or `http://localhost:PORT`, normalised; anything else refused."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS:
        raise BenchError(f"refusing {url!r}: only http://127.0.0.1:PORT or localhost is a target")
    if parts.port is None or parts.path not in ("", "/") or parts.query or parts.username:
        raise BenchError(f"refusing {url!r}: give scheme, host and port only")
    return f"http://{parts.hostname}:{parts.port}"


def raise_nofile_limit() -> int:
    """Raise this process's open-file limit to its hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


# --- the server under test ----------------------------------------------------------------


@dataclass(slots=True)
class Server:
    base_url: str
    admin_token: str
    pid: int | None
    proc: subprocess.Popen[bytes] | None = None
    tmpdir: Path | None = None


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.replace("_", "").isalnum():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def start_server(
    rate_per_user: int, connections_max: int, settings: dict[str, str] | None = None
) -> Server:
    """Run `python -m server serve` on a free loopback port and wait for its listening line."""
    tmpdir = Path(tempfile.mkdtemp(prefix="giftcast-bench-"))
    admin_token = secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTCAST_")}
    env |= {
        "GIFTCAST_ADMIN_TOKEN": admin_token,
        "GIFTCAST_DATA_DIR": str(tmpdir),
        "GIFTCAST_GIFT_RATE_PER_S": str(rate_per_user),
        "GIFTCAST_GIFT_BURST": str(max(20, rate_per_user)),
        "GIFTCAST_CONNECTIONS_PER_IP_MAX": str(connections_max),
    }
    env |= {f"GIFTCAST_{name.upper()}": value for name, value in (settings or {}).items()}
    cmd = [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", "0"]
    cmd += ["--db", f"sqlite:///{tmpdir}/bench.db"]
    log_path = tmpdir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    server = Server("", admin_token, proc.pid, proc, tmpdir)
    deadline = time.monotonic() + SERVER_LISTEN_TIMEOUT_S
    while time.monotonic() < deadline:
        match = LISTENING_RE.search(log_path.read_bytes())
        if match:
            server.base_url = f"http://127.0.0.1:{int(match.group(2))}"
            return server
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = log_tail(log_path)
    stop_server(server)
    raise BenchError(f"server did not report 'giftcast listening on ...' in time:\n{tail}")


def log_tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_bytes()[-chars:].decode(errors="replace")
    except OSError:
        return "(no server log)"


def stop_server(server: Server) -> int | None:
    """SIGTERM, then SIGKILL after 15 s; remove the temp dir. The exit code, None if killed."""
    code: int | None = None
    if server.proc is not None:
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
            try:
                code = server.proc.wait(SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait()
        else:
            code = server.proc.returncode
        if code != 0 and server.tmpdir is not None:
            print(f"--- server log tail ---\n{log_tail(server.tmpdir / 'server.log')}")
    if server.tmpdir is not None:
        shutil.rmtree(server.tmpdir, ignore_errors=True)
    return code


def peak_rss_mib(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU of all the process's threads, from /proc/PID/stat."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


# --- HTTP set-up --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    token: str


class Api:
    """The few HTTP calls the benchmark needs; any unexpected status is a BenchError."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        expect: int = 200,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        content = None if body is None else orjson.dumps(body)
        if content is not None:
            headers["Content-Type"] = "application/json"
        problem = ""
        for attempt in range(HTTP_RETRIES):
            if attempt:
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
            try:
                resp = await self._client.request(method, path, headers=headers, content=content)
            except httpx.TransportError as exc:
                problem = repr(exc)
                continue
            if resp.status_code in (429, 503):  # not an outcome: try again
                problem = f"{resp.status_code} {resp.text[:200]}"
                continue
            if resp.status_code != expect:
                raise BenchError(
                    f"{method} {path}: expected {expect}, got {resp.status_code}: {resp.text[:300]}"
                )
            return orjson.loads(resp.content)
        raise BenchError(f"{method} {path}: gave up after {HTTP_RETRIES} tries: {problem}")

    async def sign_up(self, name: str) -> Account:
        data = await self.call(
            "POST", "/api/users", body={"name": name, "birthdate": BIRTHDATE}, expect=201
        )
        return Account(str(data["id"]), str(data["name"]), str(data["token"]))

    async def me(self, account: Account) -> dict[str, Any]:
        data = await self.call("GET", "/api/me", token=account.token)
        if not isinstance(data, dict):
            raise BenchError(f"GET /api/me answered {data!r}")
        return data


async def bounded_gather(count: int, make: Callable[[int], Awaitable[T]]) -> list[T]:
    sem = asyncio.Semaphore(HTTP_CONCURRENCY)

    async def one(i: int) -> T:
        async with sem:
            return await make(i)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def wait_healthy(api: Api) -> None:
    deadline = time.monotonic() + SERVER_LISTEN_TIMEOUT_S
    while True:
        with contextlib.suppress(BenchError):
            if (await api.call("GET", "/healthz")) == {"ok": True}:
                return
        if time.monotonic() > deadline:
            raise BenchError("GET /healthz did not answer 200 {'ok': true} within 20 s")
        await asyncio.sleep(0.1)


def int_field(obj: Any, key: str) -> int:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise BenchError(f"expected an integer {key!r} in {obj!r}")
    return value


# --- set-up of users, rooms and coins -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class SenderPlan:
    index: int
    tag: str  # request-id prefix, unique per sender
    token: str
    room_id: str
    coins_before: int


@dataclass(frozen=True, slots=True)
class Fixture:
    hosts: list[Account]
    room_ids: list[str]
    senders: list[Account]
    plans: list[SenderPlan]
    host_diamonds_before: list[int]
    gift_coins: int
    diamonds_per_coin: int
    recharges: int


async def set_up(api: Api, args: Args, run: str) -> Fixture:
    catalog = await api.call("GET", "/api/catalog")
    gifts = {str(g["id"]): g for g in catalog["gifts"]}
    if GIFT_ID not in gifts:
        raise BenchError(f"the catalog has no {GIFT_ID!r} gift")
    gift_coins = int_field(gifts[GIFT_ID], "coins")
    biggest = max(catalog["packages"], key=lambda pkg: int_field(pkg, "coins"))
    package_id, package_coins = str(biggest["id"]), int_field(biggest, "coins")
    # One gift outstanding per sender bounds its rate by the round trip; assume generously.
    per_sender_rate = min(10_000.0, 100_000.0 / args.senders)
    needed = per_sender_rate * (args.warmup_s + args.duration_s + 1.0) * gift_coins
    recharges = args.recharges or max(1, math.ceil(needed / package_coins))

    hosts = await bounded_gather(args.rooms, lambda i: api.sign_up(f"bg{run}h{i}"))

    async def open_room(i: int) -> str:
        room = await api.call(
            "POST", "/api/rooms", token=hosts[i].token, body={"title": f"bench {i}"}, expect=201
        )
        return str(room["id"])

    room_ids = await bounded_gather(args.rooms, open_room)

    async def sender(i: int) -> tuple[Account, int]:
        account = await api.sign_up(f"bg{run}s{i}")
        for k in range(recharges):
            await api.call(
                "POST",
                "/api/wallet/recharge",
                token=account.token,
                body={"package_id": package_id},
                idempotency_key=f"bench-{run}-{i}-{k}",
            )
        return account, int_field(await api.me(account), "coins")

    signed = await bounded_gather(args.senders, sender)
    host_mes = await bounded_gather(args.rooms, lambda i: api.me(hosts[i]))
    host_diamonds = [int_field(me, "diamonds") for me in host_mes]
    plans = [
        SenderPlan(i, f"{run}s{i}", acct.token, room_ids[i % args.rooms], coins)
        for i, (acct, coins) in enumerate(signed)
    ]
    return Fixture(
        hosts,
        room_ids,
        [acct for acct, _ in signed],
        plans,
        host_diamonds,
        gift_coins,
        int(catalog.get("diamonds_per_coin", 1)),
        recharges,
    )


# --- the load-generating workers ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timeline:
    """Instants on `time.monotonic()`, which is system-wide on Linux (shared by all workers)."""

    start: float
    measure_from: float
    stop_sending: float
    answers_by: float


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    worker: int
    ws_base: str
    senders: tuple[SenderPlan, ...]
    gift_coins: int
    diamonds_per_coin: int


@dataclass(slots=True)
class SenderOutcome:
    index: int
    sent: int = 0
    acked: int = 0
    coins_spent: int = 0
    diamonds: int = 0
    last_balance: int | None = None
    stopped: str = ""  # why it stopped before the end, if it did


@dataclass(slots=True)
class WorkerResult:
    worker: int
    senders: list[SenderOutcome] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)  # acks inside the measured window
    errors: Counter[str] = field(default_factory=Counter)
    closed: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    violations: list[str] = field(default_factory=list)
    violation_count: int = 0
    room_seqs: dict[str, list[int]] = field(default_factory=dict)
    cpu_s: float = 0.0

    def violation(self, text: str) -> None:
        self.violation_count += 1
        if len(self.violations) < VIOLATIONS_KEPT:
            self.violations.append(text)


def close_label(exc: ConnectionClosed) -> str:
    frame = exc.rcvd
    return f"{frame.code}" if frame is not None else "no close frame"


async def open_socket(url: str) -> tuple[ClientConnection, dict[str, Any]]:
    """Connect and read the welcome; a close before it (4401, 4404, 4429...) is a BenchError."""
    ws = await connect(
        url,
        compression=None,
        max_size=WS_MAX_SIZE_BYTES,
        ping_interval=None,
        open_timeout=30,
        close_timeout=2,
        proxy=None,
    )
    try:
        welcome = orjson.loads(await asyncio.wait_for(ws.recv(decode=False), 15))
    except ConnectionClosed as exc:
        raise BenchError(f"socket closed with {close_label(exc)} before the welcome") from exc
    except BaseException:
        await ws.close()
        raise
    if not isinstance(welcome, dict) or welcome.get("type") != "welcome":
        await ws.close()
        raise BenchError(f"first message was not a welcome: {welcome!r}")
    return ws, welcome


def find_answer(message: Any, request_id: str) -> dict[str, Any] | None:
    """The `gift_ok` / `error` for `request_id` in a frame (a single message or a batch)."""
    candidates = message.get("events", []) if isinstance(message, dict) else []
    for m in [message, *candidates]:
        if (
            isinstance(m, dict)
            and m.get("type") in ("gift_ok", "error")
            and m.get("id") == request_id
        ):
            return m
    return None


async def await_answer(ws: ClientConnection, request_id: str, deadline: float) -> dict[str, Any]:
    # Room events arrive on the same socket; only frames naming the id are worth parsing.
    needle = b'"' + request_id.encode() + b'"'
    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
        while True:
            raw = await ws.recv(decode=False)
            if needle in raw:
                answer = find_answer(orjson.loads(raw), request_id)
                if answer is not None:
                    return answer


async def run_sender(
    ws: ClientConnection, sp: SenderPlan, plan: WorkerPlan, tl: Timeline, res: WorkerResult
) -> SenderOutcome:
    out = SenderOutcome(sp.index)
    balance = sp.coins_before
    seqs = res.room_seqs.setdefault(sp.room_id, [])
    await asyncio.sleep(max(0.0, tl.start - time.monotonic()))
    while time.monotonic() < tl.stop_sending:
        request_id = f"{sp.tag}.{out.sent}"
        frame = orjson.dumps({"type": "gift", "id": request_id, "gift_id": GIFT_ID, "count": 1})
        out.sent += 1
        sent_at = time.monotonic()
        try:
            await ws.send(frame.decode())
            answer = await await_answer(ws, request_id, tl.answers_by)
        except TimeoutError:
            res.lost += 1
            out.stopped = "no answer"
            break
        except ConnectionClosed as exc:
            res.lost += 1
            res.closed[close_label(exc)] += 1
            out.stopped = f"closed {close_label(exc)}"
            break
        acked_at = time.monotonic()
        if answer["type"] == "error":
            code = str(answer.get("code"))
            res.errors[code] += 1
            if code == "insufficient_coins":
                out.stopped = code
                break
            if code == "rate_limited":
                pause_s = int(answer.get("retry_after_ms", 100)) / 1000
                await asyncio.sleep(min(pause_s, max(0.0, tl.stop_sending - time.monotonic())))
            continue
        spent, diamonds, seq = answer.get("coins_spent"), answer.get("diamonds"), answer.get("seq")
        if spent != plan.gift_coins or diamonds != spent * plan.diamonds_per_coin:
            res.violation(f"gift_ok {request_id}: coins_spent={spent} diamonds={diamonds}")
        if answer.get("coins") != balance - plan.gift_coins:
            expected = balance - plan.gift_coins
            res.violation(f"gift_ok {request_id}: balance {answer.get('coins')}, not {expected}")
        if answer.get("duplicate"):
            res.violation(f"gift_ok {request_id}: duplicate for a fresh id")
        if not isinstance(seq, int):
            res.violation(f"gift_ok {request_id}: seq {seq!r}")
        else:
            seqs.append(seq)
        out.acked += 1
        out.coins_spent += spent if isinstance(spent, int) else 0
        out.diamonds += diamonds if isinstance(diamonds, int) else 0
        balance = answer["coins"] if isinstance(answer.get("coins"), int) else balance
        out.last_balance = balance
        if tl.measure_from <= acked_at < tl.stop_sending:
            res.latencies_ms.append((acked_at - sent_at) * 1000)
    return out


async def worker_main(plan: WorkerPlan, conn: Connection) -> WorkerResult:
    res = WorkerResult(plan.worker)
    sockets: dict[int, ClientConnection] = {}
    sem = asyncio.Semaphore(WS_CONNECT_CONCURRENCY)

    async def join(sp: SenderPlan) -> None:
        async with sem:
            ws, welcome = await open_socket(
                f"{plan.ws_base}/ws/rooms/{quote(sp.room_id)}?token={quote(sp.token)}"
            )
        sockets[sp.index] = ws
        you = welcome.get("you")
        if not isinstance(you, dict) or you.get("coins") != sp.coins_before:
            res.violation(f"welcome of sender {sp.index}: you={you!r}, coins {sp.coins_before}")

    try:
        await asyncio.gather(*(join(sp) for sp in plan.senders))
        conn.send(("ready", len(sockets)))
        tl: Timeline = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        cpu_before = time.process_time()
        res.senders = list(
            await asyncio.gather(
                *(run_sender(sockets[sp.index], sp, plan, tl, res) for sp in plan.senders)
            )
        )
        res.cpu_s = time.process_time() - cpu_before
    finally:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(15):
                await asyncio.gather(
                    *(ws.close() for ws in sockets.values()), return_exceptions=True
                )
    return res


def worker_entry(plan: WorkerPlan, conn: Connection) -> None:
    raise_nofile_limit()
    try:
        result = asyncio.run(worker_main(plan, conn))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the parent reports it
        return
    except Exception as exc:  # reported to the parent, which fails the run loudly
        conn.send(("failed", f"worker {plan.worker}: {exc!r}"))
        return
    conn.send(("result", result))


def collect(conns: list[Connection], kind: str, timeout_s: float) -> list[Any]:
    """One `(kind, payload)` message from every worker, in worker order; failures raise."""
    got: dict[int, Any] = {}
    index_of = {id(c): i for i, c in enumerate(conns)}
    deadline = time.monotonic() + timeout_s
    while len(got) < len(conns):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BenchError(f"workers did not report {kind!r} within {timeout_s:g} s")
        waiting = [c for i, c in enumerate(conns) if i not in got]
        for ready in wait_connections(waiting, remaining):
            i = index_of[id(ready)]
            try:
                tag, payload = conns[i].recv()
            except EOFError:
                raise BenchError(f"worker {i} died without reporting {kind!r}") from None
            if tag == "failed":
                raise BenchError(str(payload))
            if tag != kind:
                raise BenchError(f"worker {i} sent {tag!r} instead of {kind!r}")
            got[i] = payload
    return [got[i] for i in range(len(conns))]


def sleep_until(instant: float) -> None:
    time.sleep(max(0.0, instant - time.monotonic()))


@dataclass(frozen=True, slots=True)
class RunOutcome:
    results: list[WorkerResult]
    timeline: Timeline
    server_cpu_s: float | None


def run_workers(args: Args, ws_base: str, fx: Fixture, server_pid: int | None) -> RunOutcome:
    ctx = mp.get_context("spawn")
    plans = [
        WorkerPlan(
            w, ws_base, tuple(fx.plans[w :: args.workers]), fx.gift_coins, fx.diamonds_per_coin
        )
        for w in range(args.workers)
    ]
    conns: list[Connection] = []
    procs: list[Any] = []
    try:
        for plan in plans:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_entry, args=(plan, child), daemon=True)
            proc.start()
            child.close()
            conns.append(parent)
            procs.append(proc)
        collect(conns, "ready", WORKERS_READY_TIMEOUT_S)
        start = time.monotonic() + START_DELAY_S
        measure_from = start + args.warmup_s
        stop_sending = measure_from + args.duration_s
        tl = Timeline(start, measure_from, stop_sending, stop_sending + args.grace_s)
        for conn in conns:
            conn.send(tl)
        log(f"running: {args.warmup_s:g} s warm-up, {args.duration_s:g} s measured")
        sleep_until(tl.measure_from)
        cpu_from = cpu_seconds(server_pid)
        sleep_until(tl.stop_sending)
        cpu_to = cpu_seconds(server_pid)
        results: list[WorkerResult] = collect(conns, "result", args.grace_s + 60)
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
    cpu = None if cpu_from is None or cpu_to is None else cpu_to - cpu_from
    return RunOutcome(results, tl, cpu)


# --- verification and report --------------------------------------------------------------


def percentile(ordered: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return None
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


async def verify(
    api: Api, admin_token: str, fx: Fixture, results: list[WorkerResult]
) -> tuple[dict[str, Any], list[str]]:
    """The money checks: audit, per-sender coins, per-host diamonds, unique seqs."""
    failures: list[str] = []
    outcomes = sorted((o for r in results for o in r.senders), key=lambda o: o.index)
    mes = await bounded_gather(len(fx.senders), lambda i: api.me(fx.senders[i]))
    coins_after = [int_field(me, "coins") for me in mes]
    coins_debited = sum(
        p.coins_before - after for p, after in zip(fx.plans, coins_after, strict=True)
    )
    coins_acked = sum(o.coins_spent for o in outcomes)
    wrong = [
        f"sender {p.index}: debited {p.coins_before - after}, acked {o.coins_spent}, "
        f"last acked balance {o.last_balance}, balance now {after}"
        for p, o, after in zip(fx.plans, outcomes, coins_after, strict=True)
        if p.coins_before - after != o.coins_spent
        or (o.last_balance is not None and o.last_balance != after)
    ]
    if coins_acked != coins_debited or wrong:
        failures.append(
            f"coins acknowledged ({coins_acked}) != coins debited by GET /api/me ({coins_debited});"
            f" {len(wrong)} senders differ, e.g. {wrong[:3]}"
        )
    room_of = {p.index: p.room_id for p in fx.plans}
    diamonds_acked: Counter[str] = Counter()
    for o in outcomes:
        diamonds_acked[room_of[o.index]] += o.diamonds
    host_mes = await bounded_gather(len(fx.hosts), lambda i: api.me(fx.hosts[i]))
    gained = [
        int_field(me, "diamonds") - d
        for me, d in zip(host_mes, fx.host_diamonds_before, strict=True)
    ]
    wrong_hosts = [
        f"room {room}: host gained {g}, acked {diamonds_acked[room]}"
        for room, g in zip(fx.room_ids, gained, strict=True)
        if g != diamonds_acked[room]
    ]
    if wrong_hosts:
        failures.append(f"host diamonds differ from acknowledged diamonds: {wrong_hosts[:3]}")
    audit = await api.call("GET", "/api/admin/audit", token=admin_token)
    balanced = isinstance(audit, dict) and audit.get("balanced") is True
    if not balanced:
        failures.append(f"GET /api/admin/audit is not balanced: {str(audit)[:500]}")
    seqs: dict[str, list[int]] = {}
    for r in results:
        for room, room_seqs in r.room_seqs.items():
            seqs.setdefault(room, []).extend(room_seqs)
    doubled = sum(len(s) - len(set(s)) for s in seqs.values())
    holes = sum(max(s) - min(s) + 1 - len(set(s)) for s in seqs.values() if s)
    if doubled:
        failures.append(f"{doubled} room seqs were acknowledged to two different gifts")
    figures = {
        "audit_balanced": balanced,
        "coins_acked": coins_acked,
        "coins_debited": coins_debited,
        "diamonds_acked": sum(diamonds_acked.values()),
        "host_diamonds_gained": sum(gained),
        "seq_doubled": doubled,
        "seq_holes": holes,  # seqs no gift_ok named: other events (streak_end), or a gap
    }
    return figures, failures


def measure_figures(args: Args, fx: Fixture, run: RunOutcome) -> tuple[dict[str, Any], list[str]]:
    failures: list[str] = []
    res = run.results
    latencies = sorted(x for r in res for x in r.latencies_ms)
    errors: Counter[str] = Counter()
    closed: Counter[str] = Counter()
    for r in res:
        errors.update(r.errors)
        closed.update(r.closed)
    lost = sum(r.lost for r in res)
    violations = sum(r.violation_count for r in res)
    outcomes = [o for r in res for o in r.senders]
    stopped = Counter(o.stopped for o in outcomes if o.stopped)
    if lost:
        failures.append(
            f"{lost} gift requests lost: no answer within {args.grace_s:g} s of the end"
        )
    if violations:
        examples = [v for r in res for v in r.violations][:5]
        failures.append(f"{violations} contract violations in answers, e.g. {examples}")
    if closed:
        failures.append(f"sockets closed by the server during the run: {dict(closed)}")
    return {
        "cpus": os.cpu_count(),
        "senders": args.senders,
        "rooms": args.rooms,
        "workers": args.workers,
        "warmup_s": args.warmup_s,
        "duration_s": args.duration_s,
        "rate_per_user": args.rate_per_user if args.url is None else "server's own",
        "recharges_per_sender": fx.recharges,
        "gifts_sent": sum(o.sent for o in outcomes),
        "gifts_acked": sum(o.acked for o in outcomes),
        "gifts_acked_measured": len(latencies),
        "gifts_per_s_acked": len(latencies) / args.duration_s,
        "ack_latency_ms_p50": percentile(latencies, 50),
        "ack_latency_ms_p90": percentile(latencies, 90),
        "ack_latency_ms_p99": percentile(latencies, 99),
        "ack_latency_ms_max": latencies[-1] if latencies else None,
        "errors": sum(errors.values()),
        "errors_by_code": ",".join(f"{k}={v}" for k, v in sorted(errors.items())) or "none",
        "lost": lost,
        "senders_stopped_early": ",".join(f"{k}={v}" for k, v in sorted(stopped.items())) or "none",
        "contract_violations": violations,
        "server_cpu_s": run.server_cpu_s,
        "server_cpu_cores": None
        if run.server_cpu_s is None
        else run.server_cpu_s / args.duration_s,
        "loadgen_cpu_s": sum(r.cpu_s for r in res),
    }, failures


def fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def report(title: str, figures: dict[str, Any], failures: list[str], path: Path | None) -> None:
    print(f"\n== {title} ==")
    for key, value in figures.items():
        print(f"{key}: {fmt(value)}")
    for failure in failures:
        print(f"failure: {failure}")
    print(f"result: {'FAIL' if failures else 'PASS'}")
    if failures:
        bar = "!" * 72
        lines = "\n".join(f"!!! {f}" for f in failures)
        print(f"\n{bar}\n!!! {title} FAILED\n{lines}\n{bar}", file=sys.stderr)
    if path is not None:
        document = {**figures, "failures": failures, "result": "FAIL" if failures else "PASS"}
        path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))


def log(text: str) -> None:
    print(f"[bench_gifts] {text}", file=sys.stderr, flush=True)


# --- main ---------------------------------------------------------------------------------


def http_client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=HTTP_TIMEOUT_S,
        trust_env=False,  # never through a proxy: loopback only
        limits=httpx.Limits(max_connections=HTTP_CONCURRENCY),
    )


def benchmark(args: Args, server: Server) -> tuple[dict[str, Any], list[str]]:
    run_id = secrets.token_hex(3)

    async def prepare() -> Fixture:
        async with http_client(server.base_url) as client:
            api = Api(client)
            await wait_healthy(api)
            log(f"setting up {args.rooms} rooms and {args.senders} senders on {server.base_url}")
            return await set_up(api, args, run_id)

    fx = asyncio.run(prepare())
    ws_base = "ws://" + server.base_url.removeprefix("http://")
    log(f"connecting {args.senders} sockets from {args.workers} workers")
    run = run_workers(args, ws_base, fx, server.pid)
    figures, failures = measure_figures(args, fx, run)

    async def check() -> tuple[dict[str, Any], list[str]]:
        async with http_client(server.base_url) as client:
            return await verify(Api(client), server.admin_token, fx, run.results)

    try:
        checked, check_failures = asyncio.run(check())
    except BenchError as exc:  # the figures above still get printed
        checked, check_failures = {}, [f"could not verify the money: {exc}"]
    figures |= checked
    figures["server_peak_rss_mib"] = peak_rss_mib(server.pid)
    return figures, failures + check_failures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    nofile = raise_nofile_limit()
    if args.senders + args.rooms + 256 > nofile:
        print(
            f"bench_gifts: {args.senders} sockets exceed the open-file limit {nofile}",
            file=sys.stderr,
        )
        return 2
    server: Server | None = None
    exit_code: int | None = 0
    try:
        if args.url is not None:
            token = os.environ.get("GIFTCAST_ADMIN_TOKEN", "")
            if not token:
                raise BenchError("with --url, set GIFTCAST_ADMIN_TOKEN (the audit needs it)")
            server = Server(loopback_base_url(args.url), token, args.server_pid)
        else:
            server = start_server(
                args.rate_per_user, args.senders + args.rooms + 1000, args.settings
            )
            log(f"started server pid {server.pid} at {server.base_url}")
        figures, failures = benchmark(args, server)
    except BenchError as exc:
        print(f"bench_gifts: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench_gifts: interrupted; the server and workers were stopped", file=sys.stderr)
        return 130
    finally:
        if server is not None and server.proc is not None:
            exit_code = stop_server(server)
    if server.proc is not None:
        figures["server_exit_code"] = "killed" if exit_code is None else exit_code
        if exit_code != 0:
            failures.append(f"the server exited with {exit_code} on SIGTERM (the contract says 0)")
    report("giftcast bench_gifts", figures, failures, args.json_path)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
