"""Fan-out benchmark: one room, many viewers, gifts at a steady rate; delivery latency and loss.

What it measures
----------------
One live room (hosted by its own user), `--viewers` signed-up users watching it over
`/ws/rooms/{id}?token=...`, and `--senders` users with coins sending Rose gifts open-loop at a
total of `--rate` gifts per second, paced evenly (sender k of S sends at t0 + k/R, then every
S/R seconds, whether or not earlier gifts were answered). After `--warmup` seconds it measures
for `--duration` seconds:

- achieved gifts/s (gifts acknowledged with `gift_ok`, by send time) against the target;
- viewer-events delivered per second (each `gift` event counted once per viewer);
- delivery latency: the instant a viewer received a `gift` event minus the instant its sender
  sent that gift, matched through the `seq` in the sender's `gift_ok`; both are
  `time.monotonic()` readings, system-wide on Linux, so they compare across the worker
  processes. It includes the load generator's own scheduling delay (see `send_lag_ms_max` and
  `loadgen_cpu_s`);
- the server's peak RSS (VmHWM) and the CPU seconds it used during the measured window.

Viewers accept frames that are single events or `{"type": "batch", "events": [...]}`. After
the senders stop, viewers listen `--drain` more seconds. A loss is any viewer missing any `seq`
between the first and the last `seq` acknowledged during the run, or seeing one twice; a gift
request never answered is a lost request. Any loss, a socket closed by the server, out-of-order
events or a malformed answer fails the run (exit 1).

How to run
----------
From the repository root, with the project installed (`pip install -e '.[dev]'`)::

    python scripts/bench_fanout.py                       # 2000 viewers, 40 senders, 200/s, 10 s
    python scripts/bench_fanout.py --viewers 200 --rate 100 --duration 3 --json /tmp/fan.json

By default it starts its own server (`python -m server serve --port 0`, SQLite in a temporary
directory, the per-user gift rate limit raised to `--rate-per-user`) and stops it with SIGTERM at
the end. `--url http://127.0.0.1:PORT` targets a running server instead (`--server-pid` enables
the RSS / CPU figures). Only 127.0.0.1 and localhost are accepted; every count and duration is
bounded. Viewers are spread over `--workers` processes; the senders run in one more process of
their own, so that bursts of viewer frames do not delay the sends.

The final block prints one `name: value` per line (`events_delivered_per_s: 398000.0`), ending
with `result: PASS` or `result: FAIL`. Exit status: 0 pass, 1 a check failed, 2 bad arguments
or set-up failure.
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
from array import array
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
WORKERS_READY_TIMEOUT_S = 300.0
START_DELAY_S = 0.5
VIOLATIONS_KEPT = 20
LOADGEN_LAG_S_MAX = 0.1  # senders later than this behind schedule: figures are suspect
FRAME_CACHE_MAX = 4096  # parsed frames kept per worker: every viewer gets the same bytes
SEQ_EVENT_TYPES = frozenset({"gift", "streak_end", "room_ended"})
LISTENING_RE = re.compile(rb"giftcast listening on http://([^\s:/]+|\[[^\]]+\]):(\d+)")

VIEWERS_MAX = 15_000
SENDERS_MAX = 1_000
RATE_PER_S_MAX = 5_000.0
WORKERS_MAX = 16
DURATION_S_MAX = 120.0
WARMUP_S_MAX = 30.0
DRAIN_S_MAX = 30.0
VIEWER_EVENTS_MAX = 50_000_000  # viewers x events: bounds the memory for the loss tables
RATE_PER_USER_MAX = 10_000_000


class BenchError(Exception):
    """Set-up or usage failure: the benchmark could not run (exit status 2)."""


# --- arguments ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Args:
    viewers: int
    senders: int
    rate_per_s: float
    duration_s: float
    warmup_s: float
    drain_s: float
    workers: int
    rate_per_user: int
    url: str | None
    server_pid: int | None
    json_path: Path | None
    settings: dict[str, str]


def parse_args(argv: Sequence[str] | None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--viewers", type=int, default=2000, help="viewer sockets (default 2000)")
    p.add_argument("--senders", type=int, default=40, help="gift senders (default 40)")
    p.add_argument("--rate", type=float, default=200.0, help="total gifts/s, open loop (200)")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first (2)")
    p.add_argument("--drain", type=float, default=3.0, help="seconds viewers listen after (3)")
    p.add_argument("--workers", type=int, default=2, help="viewer processes (default 2)")
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
    p.add_argument("--url", default=None, help="target a running server (loopback only)")
    p.add_argument("--server-pid", type=int, default=None, help="pid of the --url server")
    p.add_argument("--json", dest="json_path", type=Path, default=None, help="write figures")
    ns = p.parse_args(argv)
    args = Args(
        viewers=ns.viewers,
        senders=ns.senders,
        rate_per_s=ns.rate,
        duration_s=ns.duration,
        warmup_s=ns.warmup,
        drain_s=ns.drain,
        workers=ns.workers,
        rate_per_user=ns.rate_per_user,
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
    if not 1 <= a.viewers <= VIEWERS_MAX:
        yield f"--viewers must be 1-{VIEWERS_MAX}"
    if not 1 <= a.senders <= SENDERS_MAX:
        yield f"--senders must be 1-{SENDERS_MAX}"
    if not 1.0 <= a.rate_per_s <= RATE_PER_S_MAX:
        yield f"--rate must be 1-{RATE_PER_S_MAX:g} gifts/s"
    if not 1.0 <= a.duration_s <= DURATION_S_MAX:
        yield f"--duration must be 1-{DURATION_S_MAX:g} s"
    if not 0.0 <= a.warmup_s <= WARMUP_S_MAX:
        yield f"--warmup must be 0-{WARMUP_S_MAX:g} s"
    if not 1.0 <= a.drain_s <= DRAIN_S_MAX:
        yield f"--drain must be 1-{DRAIN_S_MAX:g} s"
    if not 1 <= a.workers <= min(WORKERS_MAX, a.viewers):
        yield f"--workers must be 1-{WORKERS_MAX} and at most --viewers"
    if not 1 <= a.rate_per_user <= RATE_PER_USER_MAX:
        yield f"--rate-per-user must be 1-{RATE_PER_USER_MAX}"
    if a.viewers * a.rate_per_s * (a.warmup_s + a.duration_s) > VIEWER_EVENTS_MAX:
        yield f"viewers x rate x (warmup + duration) must stay under {VIEWER_EVENTS_MAX:,}"
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


# --- set-up of the room, viewers and senders ----------------------------------------------


@dataclass(frozen=True, slots=True)
class SenderPlan:
    slot: int  # 0..S-1: its place in the evenly paced schedule
    tag: str  # request-id prefix, unique per sender
    token: str


@dataclass(frozen=True, slots=True)
class Fixture:
    room_id: str
    first_seq: int  # the first seq this run can produce
    viewer_tokens: list[str]
    senders: list[SenderPlan]
    recharges: int


async def set_up(api: Api, args: Args, run: str) -> Fixture:
    catalog = await api.call("GET", "/api/catalog")
    gifts = {str(g["id"]): g for g in catalog["gifts"]}
    if GIFT_ID not in gifts:
        raise BenchError(f"the catalog has no {GIFT_ID!r} gift")
    gift_coins = int_field(gifts[GIFT_ID], "coins")
    biggest = max(catalog["packages"], key=lambda pkg: int_field(pkg, "coins"))
    package_id, package_coins = str(biggest["id"]), int_field(biggest, "coins")
    per_sender = math.ceil(args.rate_per_s / args.senders * (args.warmup_s + args.duration_s + 1))
    recharges = max(1, math.ceil((per_sender + 1) * gift_coins / package_coins))

    host = await api.sign_up(f"bf{run}h")
    room = await api.call(
        "POST", "/api/rooms", token=host.token, body={"title": "fan-out bench"}, expect=201
    )
    room_id = str(room["id"])
    first_seq = int_field(await api.call("GET", f"/api/rooms/{quote(room_id)}"), "seq") + 1
    viewers = await bounded_gather(args.viewers, lambda i: api.sign_up(f"bf{run}v{i}"))

    async def sender(i: int) -> SenderPlan:
        account = await api.sign_up(f"bf{run}s{i}")
        for k in range(recharges):
            await api.call(
                "POST",
                "/api/wallet/recharge",
                token=account.token,
                body={"package_id": package_id},
                idempotency_key=f"bench-{run}-{i}-{k}",
            )
        return SenderPlan(i, f"{run}s{i}", account.token)

    senders = await bounded_gather(args.senders, sender)
    return Fixture(room_id, first_seq, [v.token for v in viewers], senders, recharges)


# --- the load-generating workers ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timeline:
    """Instants on `time.monotonic()`, which is system-wide on Linux (shared by all workers)."""

    start: float
    measure_from: float
    stop_sending: float
    listen_until: float


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    worker: int
    ws_base: str
    room_id: str
    first_seq: int
    seq_slots: int  # size of each viewer's seq table, from first_seq on
    viewer_tokens: tuple[str, ...]
    senders: tuple[SenderPlan, ...]
    total_senders: int
    rate_per_s: float


@dataclass(slots=True)
class WorkerResult:
    """What a worker reports; per-seq tables are indexed by `seq - first_seq`."""

    worker: int
    viewer_counts: list[bytes] = field(default_factory=list)  # per viewer: times each seq seen
    viewers_closed: Counter[str] = field(default_factory=Counter)
    recv_times: list[array[float]] = field(default_factory=list)  # per seq: viewers' receipts
    delivered_in_window: int = 0
    out_of_order: int = 0
    out_of_range: int = 0
    sent: int = 0
    sent_at: dict[int, float] = field(default_factory=dict)  # acknowledged seq -> send instant
    ack_latencies_ms: list[float] = field(default_factory=list)  # gifts sent in the window
    errors: Counter[str] = field(default_factory=Counter)
    senders_closed: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    send_lag_s_max: float = 0.0
    violations: list[str] = field(default_factory=list)
    violation_count: int = 0
    cpu_s: float = 0.0

    def violation(self, text: str) -> None:
        self.violation_count += 1
        if len(self.violations) < VIOLATIONS_KEPT:
            self.violations.append(text)


def seq_events(raw: bytes) -> tuple[tuple[int, bool], ...]:
    """(seq, is_gift) for each numbered event of a frame, a single event or a batch."""
    message = orjson.loads(raw)
    if isinstance(message, dict) and message.get("type") == "batch":
        items = message.get("events")
    else:
        items = [message]
    found: list[tuple[int, bool]] = []
    for event in items if isinstance(items, list) else []:
        if isinstance(event, dict) and event.get("type") in SEQ_EVENT_TYPES:
            seq = event.get("seq")
            if isinstance(seq, int):
                found.append((seq, event["type"] == "gift"))
    return tuple(found)


class FrameCache:
    """Every viewer of a worker receives the same frame bytes; parse each frame once."""

    def __init__(self) -> None:
        self._parsed: dict[bytes, tuple[tuple[int, bool], ...]] = {}

    def events(self, raw: bytes) -> tuple[tuple[int, bool], ...]:
        found = self._parsed.get(raw)
        if found is None:
            found = seq_events(raw)
            if len(self._parsed) >= FRAME_CACHE_MAX:
                self._parsed.clear()
            self._parsed[raw] = found
        return found


async def run_viewer(
    ws: ClientConnection,
    counts: bytearray,
    plan: WorkerPlan,
    tl: Timeline,
    res: WorkerResult,
    cache: FrameCache,
) -> None:
    """Count every numbered event by seq until `listen_until`; note the first receipt time."""
    base, slots, times = plan.first_seq, plan.seq_slots, res.recv_times
    window_from, window_to = tl.measure_from, tl.stop_sending
    last = base - 1
    try:
        async with asyncio.timeout(max(0.0, tl.listen_until - time.monotonic())):
            while True:
                raw = await ws.recv(decode=False)
                now = time.monotonic()
                for seq, is_gift in cache.events(raw):
                    index = seq - base
                    if not 0 <= index < slots:
                        res.out_of_range += 1
                        continue
                    seen = counts[index]
                    if seen:  # a duplicate: counted, judged by the parent
                        counts[index] = min(255, seen + 1)
                        continue
                    counts[index] = 1
                    if seq < last:
                        res.out_of_order += 1
                    last = max(last, seq)
                    if is_gift:
                        times[index].append(now)
                        if window_from <= now < window_to:
                            res.delivered_in_window += 1
    except TimeoutError:
        return
    except ConnectionClosed as exc:
        res.viewers_closed[close_label(exc)] += 1


def answers_in(message: Any) -> list[dict[str, Any]]:
    """The `gift_ok` / `error` answers in a frame, a single message or a batch."""
    candidates = message.get("events", []) if isinstance(message, dict) else []
    return [
        m
        for m in [message, *(candidates if isinstance(candidates, list) else [])]
        if isinstance(m, dict) and m.get("type") in ("gift_ok", "error")
    ]


@dataclass(slots=True)
class OpenSender:
    """One sender's requests in flight; `settled` is set once all were sent and answered."""

    pending: dict[str, float] = field(default_factory=dict)  # request id -> send instant
    done_sending: bool = False
    closed: str = ""  # the close code, if the server closed this socket
    settled: asyncio.Event = field(default_factory=asyncio.Event)


async def read_answers(
    ws: ClientConnection, state: OpenSender, tl: Timeline, res: WorkerResult
) -> None:
    try:
        while True:
            raw = await ws.recv(decode=False)
            # Room events arrive on this socket too; only answers are worth parsing.
            if b"gift_ok" not in raw and b"error" not in raw:
                continue
            for answer in answers_in(orjson.loads(raw)):
                sent_at = state.pending.pop(str(answer.get("id")), None)
                if sent_at is None:
                    res.violation(f"an answer for no request in flight: {answer}")
                    continue
                if answer["type"] == "error":
                    res.errors[str(answer.get("code"))] += 1
                    continue
                seq = answer.get("seq")
                if not isinstance(seq, int) or seq in res.sent_at or answer.get("duplicate"):
                    res.violation(f"gift_ok with a bad, repeated or duplicate seq: {answer}")
                    continue
                res.sent_at[seq] = sent_at
                if tl.measure_from <= sent_at < tl.stop_sending:
                    res.ack_latencies_ms.append((time.monotonic() - sent_at) * 1000)
            if state.done_sending and not state.pending:
                state.settled.set()
    except ConnectionClosed as exc:
        state.closed = close_label(exc)


async def run_open_sender(
    ws: ClientConnection, sp: SenderPlan, plan: WorkerPlan, tl: Timeline, res: WorkerResult
) -> None:
    """Send on schedule whatever the answers do (open loop), then await the last answers."""
    period_s = plan.total_senders / plan.rate_per_s
    first_due = tl.start + sp.slot / plan.rate_per_s
    state = OpenSender()
    reader = asyncio.create_task(read_answers(ws, state, tl, res))
    n = 0
    try:
        while (due := first_due + n * period_s) < tl.stop_sending and not reader.done():
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            request_id = f"{sp.tag}.{n}"
            n += 1
            frame = orjson.dumps({"type": "gift", "id": request_id, "gift_id": GIFT_ID, "count": 1})
            sent_at = time.monotonic()
            res.send_lag_s_max = max(res.send_lag_s_max, sent_at - due)
            state.pending[request_id] = sent_at
            res.sent += 1
            await ws.send(frame.decode())
        state.done_sending = True
        if not state.pending:
            state.settled.set()
        settled = asyncio.create_task(state.settled.wait())
        await asyncio.wait(
            {reader, settled},
            timeout=max(0.0, tl.listen_until - time.monotonic()),
            return_when=asyncio.FIRST_COMPLETED,
        )
        settled.cancel()
    except ConnectionClosed as exc:
        state.closed = close_label(exc)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    res.lost += len(state.pending)
    if state.closed:
        res.senders_closed[state.closed] += 1


async def worker_main(plan: WorkerPlan, conn: Connection) -> WorkerResult:
    res = WorkerResult(plan.worker, recv_times=[array("d") for _ in range(plan.seq_slots)])
    viewers: list[ClientConnection] = []
    senders: dict[int, ClientConnection] = {}
    sem = asyncio.Semaphore(WS_CONNECT_CONCURRENCY)
    room_url = f"{plan.ws_base}/ws/rooms/{quote(plan.room_id)}?token="

    async def join_viewer(token: str) -> None:
        async with sem:
            ws, welcome = await open_socket(room_url + quote(token))
        viewers.append(ws)
        if welcome.get("seq") != plan.first_seq - 1:
            res.violation(f"welcome seq {welcome.get('seq')!r}, room was at {plan.first_seq - 1}")

    async def join_sender(sp: SenderPlan) -> None:
        async with sem:
            senders[sp.slot], _ = await open_socket(room_url + quote(sp.token))

    try:
        await asyncio.gather(
            *(join_viewer(t) for t in plan.viewer_tokens), *(join_sender(s) for s in plan.senders)
        )
        conn.send(("ready", len(viewers) + len(senders)))
        tl: Timeline = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        cpu_before = time.process_time()
        cache = FrameCache()
        counts = [bytearray(plan.seq_slots) for _ in viewers]
        watching = [
            asyncio.create_task(run_viewer(ws, c, plan, tl, res, cache))
            for ws, c in zip(viewers, counts, strict=True)
        ]
        await asyncio.gather(
            *(run_open_sender(senders[s.slot], s, plan, tl, res) for s in plan.senders)
        )
        await asyncio.gather(*watching)
        res.viewer_counts = [bytes(c) for c in counts]
        res.cpu_s = time.process_time() - cpu_before
    finally:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(15):
                sockets = [*viewers, *senders.values()]
                await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
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
    seq_slots = int(args.rate_per_s * (args.warmup_s + args.duration_s)) + 2 * args.senders + 1000
    # Viewers over `--workers` processes; the senders in one more of their own, so that a burst
    # of viewer frames never delays a send past its schedule.
    groups: list[tuple[tuple[str, ...], tuple[SenderPlan, ...]]] = [
        (tuple(fx.viewer_tokens[w :: args.workers]), ()) for w in range(args.workers)
    ]
    groups.append(((), tuple(fx.senders)))
    plans = [
        WorkerPlan(
            worker=w,
            ws_base=ws_base,
            room_id=fx.room_id,
            first_seq=fx.first_seq,
            seq_slots=seq_slots,
            viewer_tokens=viewer_tokens,
            senders=senders,
            total_senders=args.senders,
            rate_per_s=args.rate_per_s,
        )
        for w, (viewer_tokens, senders) in enumerate(groups)
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
        tl = Timeline(start, measure_from, stop_sending, stop_sending + args.drain_s)
        for conn in conns:
            conn.send(tl)
        log(f"running: {args.warmup_s:g} s warm-up, {args.duration_s:g} s measured")
        sleep_until(tl.measure_from)
        cpu_from = cpu_seconds(server_pid)
        sleep_until(tl.stop_sending)
        cpu_to = cpu_seconds(server_pid)
        results: list[WorkerResult] = collect(conns, "result", args.drain_s + 60)
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
    cpu = None if cpu_from is None or cpu_to is None else cpu_to - cpu_from
    return RunOutcome(results, tl, cpu)


# --- figures and checks -------------------------------------------------------------------


def percentile(ordered: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return None
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


def figures_of(args: Args, fx: Fixture, run: RunOutcome) -> tuple[dict[str, Any], list[str]]:
    failures: list[str] = []
    res, tl, base = run.results, run.timeline, fx.first_seq
    sent_at: dict[int, float] = {}
    acked_twice = 0
    for r in res:
        acked_twice += len(sent_at.keys() & r.sent_at.keys())
        sent_at |= r.sent_at
    if acked_twice:
        failures.append(f"{acked_twice} seqs were acknowledged to two different gifts")
    if not sent_at:
        failures.append("no gift was acknowledged")
    first, last = (min(sent_at), max(sent_at)) if sent_at else (base, base - 1)

    # Loss: every viewer must have seen every seq in [first, last] exactly once.
    missing = doubled = viewers_missing = 0
    for r in res:
        for counts in r.viewer_counts:
            window = counts[first - base : last - base + 1]
            zeros, ones = window.count(0), window.count(1)
            missing += zeros
            doubled += len(window) - zeros - ones
            viewers_missing += zeros > 0
    if missing:
        failures.append(
            f"{missing} viewer-events lost: {viewers_missing} viewers missed seqs in "
            f"[{first}, {last}]"
        )
    if doubled:
        failures.append(f"{doubled} viewer-events delivered twice (same seq to the same viewer)")

    latencies: list[float] = []
    for r in res:
        for index, times in enumerate(r.recv_times):
            sent = sent_at.get(base + index)
            if times and sent is not None and tl.measure_from <= sent < tl.stop_sending:
                latencies.extend([(t - sent) * 1000 for t in times])
    latencies.sort()
    acks = sorted(x for r in res for x in r.ack_latencies_ms)
    errors: Counter[str] = Counter()
    viewers_closed: Counter[str] = Counter()
    senders_closed: Counter[str] = Counter()
    for r in res:
        errors.update(r.errors)
        viewers_closed.update(r.viewers_closed)
        senders_closed.update(r.senders_closed)
    lost_requests = sum(r.lost for r in res)
    out_of_order = sum(r.out_of_order for r in res)
    out_of_range = sum(r.out_of_range for r in res)
    violations = sum(r.violation_count for r in res)
    if lost_requests:
        failures.append(f"{lost_requests} gift requests never answered (lost)")
    if viewers_closed or senders_closed:
        failures.append(
            f"sockets closed by the server: viewers {dict(viewers_closed)}, "
            f"senders {dict(senders_closed)}"
        )
    if out_of_order or out_of_range:
        failures.append(f"{out_of_order} events out of order, {out_of_range} with unexpected seqs")
    if violations:
        examples = [v for r in res for v in r.violations][:5]
        failures.append(f"{violations} contract violations, e.g. {examples}")
    in_window = sum(1 for t in sent_at.values() if tl.measure_from <= t < tl.stop_sending)
    send_lag_s = max(r.send_lag_s_max for r in res)
    if send_lag_s > LOADGEN_LAG_S_MAX:
        log(
            f"warning: senders fell {send_lag_s * 1000:.0f} ms behind schedule; the load generator"
            " (or another process) is short of CPU, and latencies include its delay"
        )
    figures: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "viewers": args.viewers,
        "senders": args.senders,
        "workers": args.workers,
        "warmup_s": args.warmup_s,
        "duration_s": args.duration_s,
        "drain_s": args.drain_s,
        "rate_per_user": args.rate_per_user if args.url is None else "server's own",
        "gifts_per_s_target": args.rate_per_s,
        "gifts_sent": sum(r.sent for r in res),
        "gifts_acked": len(sent_at),
        "gifts_per_s_achieved": in_window / args.duration_s,
        "events_delivered_per_s": sum(r.delivered_in_window for r in res) / args.duration_s,
        "delivery_latency_ms_p50": percentile(latencies, 50),
        "delivery_latency_ms_p90": percentile(latencies, 90),
        "delivery_latency_ms_p99": percentile(latencies, 99),
        "delivery_latency_ms_max": latencies[-1] if latencies else None,
        "ack_latency_ms_p50": percentile(acks, 50),
        "ack_latency_ms_p99": percentile(acks, 99),
        "send_lag_ms_max": send_lag_s * 1000,
        "loadgen_behind_schedule": send_lag_s > LOADGEN_LAG_S_MAX,
        "errors": sum(errors.values()),
        "errors_by_code": ",".join(f"{k}={v}" for k, v in sorted(errors.items())) or "none",
        "lost_requests": lost_requests,
        "seq_first": first,
        "seq_last": last,
        "lost_events": missing,
        "doubled_events": doubled,
        "viewers_with_loss": viewers_missing,
        "out_of_order": out_of_order,
        "contract_violations": violations,
        "server_cpu_s": run.server_cpu_s,
        "server_cpu_cores": None
        if run.server_cpu_s is None
        else run.server_cpu_s / args.duration_s,
        "loadgen_cpu_s": sum(r.cpu_s for r in res),
    }
    return figures, failures


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


def http_client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=HTTP_TIMEOUT_S,
        trust_env=False,  # never through a proxy: loopback only
        limits=httpx.Limits(max_connections=HTTP_CONCURRENCY),
    )


def log(text: str) -> None:
    print(f"[bench_fanout] {text}", file=sys.stderr, flush=True)


# --- main ---------------------------------------------------------------------------------


def benchmark(args: Args, server: Server) -> tuple[dict[str, Any], list[str]]:
    run_id = secrets.token_hex(3)

    async def prepare() -> Fixture:
        async with http_client(server.base_url) as client:
            api = Api(client)
            await wait_healthy(api)
            log(f"setting up {args.viewers} viewers and {args.senders} senders")
            return await set_up(api, args, run_id)

    fx = asyncio.run(prepare())
    ws_base = "ws://" + server.base_url.removeprefix("http://")
    log(f"connecting {args.viewers + args.senders} sockets from {args.workers} workers")
    run = run_workers(args, ws_base, fx, server.pid)
    figures, failures = figures_of(args, fx, run)
    figures["server_peak_rss_mib"] = peak_rss_mib(server.pid)
    return figures, failures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    nofile = raise_nofile_limit()
    if args.viewers + args.senders + 256 > nofile:
        print(
            f"bench_fanout: {args.viewers + args.senders} sockets exceed the limit {nofile}",
            file=sys.stderr,
        )
        return 2
    server: Server | None = None
    exit_code: int | None = 0
    try:
        if args.url is not None:
            server = Server(loopback_base_url(args.url), "", args.server_pid)
        else:
            server = start_server(
                args.rate_per_user, args.viewers + args.senders + 1000, args.settings
            )
            log(f"started server pid {server.pid} at {server.base_url}")
        figures, failures = benchmark(args, server)
    except BenchError as exc:
        print(f"bench_fanout: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench_fanout: interrupted; the server and workers were stopped", file=sys.stderr)
        return 130
    finally:
        if server is not None and server.proc is not None:
            exit_code = stop_server(server)
    if server.proc is not None:
        figures["server_exit_code"] = "killed" if exit_code is None else exit_code
        if exit_code != 0:
            failures.append(f"the server exited with {exit_code} on SIGTERM (the contract says 0)")
    report("giftcast bench_fanout", figures, failures, args.json_path)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
