"""What `bench_gifts.py` and `bench_fanout.py` share: everything but what each one measures.

- arguments: the common flags (`--duration`, `--warmup`, `--rate-per-user`, `--set NAME=VALUE`,
  `--url`, `--server-pid`, `--json`) and their checks, loopback-only targets, `RLIMIT_NOFILE`;
- the server under test: `python -m server serve` on a free loopback port with a temporary
  SQLite database, stopped with SIGTERM; its peak RSS and CPU seconds read from /proc;
- HTTP set-up over httpx: sign-up, recharge, go-live, the gift and package prices, retries;
- WebSockets: connecting and reading the welcome, close codes, closing many sockets;
- the load-generating worker processes (spawned, one pipe each) and the shared `Timeline`;
- the report: nearest-rank percentiles, the final `name: value` block, `--json`, and `bench_main`,
  which starts and stops the server and turns the outcome into the exit status (0 pass, 1 a
  check failed, 2 bad arguments or set-up failure, 130 interrupted).

Import it as `scripts.benchkit`; each benchmark puts the repository root on `sys.path` when it
is run as a file.
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
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_connections
from pathlib import Path
from typing import Any, Generic, Protocol, Self, TypeVar
from urllib.parse import urlsplit

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from server.loadtest.serverproc import serve_command, server_env, spawn_listening, stop_process

T = TypeVar("T")
R = TypeVar("R")

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
START_DELAY_S = 0.5
VIOLATIONS_KEPT = 20
LISTENING_RE = re.compile(rb"giftcast listening on http://([^\s:/]+|\[[^\]]+\]):(\d+)")

WORKERS_MAX = 16
DURATION_S_MAX = 120.0
WARMUP_S_MAX = 30.0
RATE_PER_USER_MAX = 10_000_000


class BenchError(Exception):
    """Set-up or usage failure: the benchmark could not run (exit status 2)."""


# --- arguments ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BenchArgs:
    """The arguments every benchmark has; each script's `Args` adds its own."""

    duration_s: float
    warmup_s: float
    workers: int
    rate_per_user: int
    url: str | None
    server_pid: int | None
    json_path: Path | None
    settings: dict[str, str]

    @classmethod
    def from_command_line(cls, ns: argparse.Namespace, **own: Any) -> Self:
        """The common arguments out of `ns` (`--workers` is each script's), plus `own`."""
        return cls(
            duration_s=ns.duration,
            warmup_s=ns.warmup,
            workers=ns.workers,
            rate_per_user=ns.rate_per_user,
            url=ns.url,
            server_pid=ns.server_pid,
            json_path=ns.json_path,
            settings=dict(ns.set),
            **own,
        )


def exit_on_problems(p: argparse.ArgumentParser, problems: Iterable[str]) -> None:
    """Any problems: print the usage and them, and exit 2 (argparse's `error`)."""
    found = list(problems)
    if found:
        p.error("; ".join(found))


def add_window_arguments(p: argparse.ArgumentParser) -> None:
    """`--duration` and `--warmup`."""
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first (2)")


def add_server_arguments(p: argparse.ArgumentParser) -> None:
    """`--rate-per-user` and `--set NAME=VALUE`, for the server the script starts."""
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
        type=parse_setting,
        metavar="NAME=VALUE",
        help="a server setting for the server this script starts, e.g. --set fanout_flush_ms=100"
        " (becomes GIFTCAST_NAME; repeatable)",
    )


def add_target_arguments(p: argparse.ArgumentParser) -> None:
    """`--url`, `--server-pid` and `--json`."""
    p.add_argument("--url", default=None, help="target a running server (loopback only)")
    p.add_argument("--server-pid", type=int, default=None, help="pid of the --url server")
    p.add_argument("--json", dest="json_path", type=Path, default=None, help="write figures")


def parse_setting(text: str) -> tuple[str, str]:
    """`NAME=VALUE` of `--set`; NAME is letters, digits and underscores."""
    name, sep, value = text.partition("=")
    if not sep or not name.replace("_", "").isalnum():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def window_problems(a: BenchArgs) -> Iterator[str]:
    """What is wrong with `--duration` and `--warmup`."""
    if not 1.0 <= a.duration_s <= DURATION_S_MAX:
        yield f"--duration must be 1-{DURATION_S_MAX:g} s"
    if not 0.0 <= a.warmup_s <= WARMUP_S_MAX:
        yield f"--warmup must be 0-{WARMUP_S_MAX:g} s"


def target_problems(a: BenchArgs) -> Iterator[str]:
    """What is wrong with `--url`, `--server-pid` and `--json`."""
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


def start_server(
    rate_per_user: int, connections_max: int, settings: dict[str, str] | None = None
) -> Server:
    """Run `python -m server serve` on a free loopback port and wait for its listening line."""
    tmpdir = Path(tempfile.mkdtemp(prefix="giftcast-bench-"))
    admin_token = secrets.token_urlsafe(24)
    limits = {
        "gift_rate_per_s": str(rate_per_user),
        "gift_burst": str(max(20, rate_per_user)),
        "connections_per_ip_max": str(connections_max),
    }
    env = server_env(admin_token, tmpdir, limits | (settings or {}))
    proc, found = spawn_listening(
        serve_command(tmpdir / "bench.db"),
        cwd=REPO_ROOT,
        env=env,
        log_path=tmpdir / "server.log",
        listening=LISTENING_RE,
        timeout_s=SERVER_LISTEN_TIMEOUT_S,
    )
    server = Server("", admin_token, proc.pid, proc, tmpdir)
    if found:
        server.base_url = f"http://127.0.0.1:{int(found.group(2))}"
        return server
    tail = log_tail(tmpdir / "server.log")
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
        code = stop_process(server.proc, SERVER_STOP_TIMEOUT_S)
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


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores spent on anything but idle and I/O wait, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


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


@dataclass(frozen=True, slots=True)
class Prices:
    """What the catalog says a gift and the biggest coin package cost."""

    catalog: Any  # the whole `GET /api/catalog` answer
    gift_coins: int  # coins per GIFT_ID gift
    package_id: str  # the biggest package
    package_coins: int


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

    async def sign_up_with_coins(
        self, name: str, package_id: str, recharges: int, key_prefix: str
    ) -> Account:
        """Sign up, then buy `package_id` `recharges` times (idempotency key `key_prefix-k`)."""
        account = await self.sign_up(name)
        for k in range(recharges):
            await self.call(
                "POST",
                "/api/wallet/recharge",
                token=account.token,
                body={"package_id": package_id},
                idempotency_key=f"{key_prefix}-{k}",
            )
        return account

    async def go_live(self, host: Account, title: str) -> str:
        """Open a room hosted by `host`; its id."""
        room = await self.call(
            "POST", "/api/rooms", token=host.token, body={"title": title}, expect=201
        )
        return str(room["id"])

    async def me(self, account: Account) -> dict[str, Any]:
        data = await self.call("GET", "/api/me", token=account.token)
        if not isinstance(data, dict):
            raise BenchError(f"GET /api/me answered {data!r}")
        return data

    async def prices(self) -> Prices:
        catalog = await self.call("GET", "/api/catalog")
        gifts = {str(g["id"]): g for g in catalog["gifts"]}
        if GIFT_ID not in gifts:
            raise BenchError(f"the catalog has no {GIFT_ID!r} gift")
        gift_coins = int_field(gifts[GIFT_ID], "coins")
        biggest = max(catalog["packages"], key=lambda pkg: int_field(pkg, "coins"))
        return Prices(catalog, gift_coins, str(biggest["id"]), int_field(biggest, "coins"))


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


def http_client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=HTTP_TIMEOUT_S,
        trust_env=False,  # never through a proxy: loopback only
        limits=httpx.Limits(max_connections=HTTP_CONCURRENCY),
    )


def over_http(base_url: str, work: Callable[[Api], Awaitable[T]]) -> T:
    """Run `work` with an `Api` on a fresh client, in an event loop of its own."""

    async def run() -> T:
        async with http_client(base_url) as client:
            return await work(Api(client))

    return asyncio.run(run())


def prepare(
    server: Server, note: str, log: Callable[[str], None], set_up: Callable[[Api], Awaitable[T]]
) -> T:
    """Wait for `/healthz`, log `note`, then run `set_up` (the users, rooms and coins)."""

    async def healthy_then_set_up(api: Api) -> T:
        await wait_healthy(api)
        log(note)
        return await set_up(api)

    return over_http(server.base_url, healthy_then_set_up)


def ws_base_url(server: Server) -> str:
    return "ws://" + server.base_url.removeprefix("http://")


# --- WebSockets ---------------------------------------------------------------------------


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


async def close_all(sockets: Iterable[ClientConnection]) -> None:
    """Close every socket, giving up after 15 s altogether."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(15):
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


# --- the load-generating workers ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timeline:
    """Instants on `time.monotonic()`, which is system-wide on Linux (shared by all workers)."""

    start: float
    measure_from: float
    stop_sending: float
    end: float  # stop_sending + the time still given to answers (bench_gifts) or viewers


@dataclass(slots=True)
class Violations:
    """Contract violations a worker saw: how many, and the first VIOLATIONS_KEPT of them."""

    kept: list[str] = field(default_factory=list)
    count: int = 0

    def add(self, text: str) -> None:
        self.count += 1
        if len(self.kept) < VIOLATIONS_KEPT:
            self.kept.append(text)


class WorkerPlanLike(Protocol):
    """What a worker process is given; `worker` is its index."""

    @property
    def worker(self) -> int: ...


P = TypeVar("P", bound=WorkerPlanLike)


async def report_ready(conn: Connection, sockets: int) -> Timeline:
    """Tell the parent `sockets` are open, then wait (off the event loop) for the timeline."""
    conn.send(("ready", sockets))
    tl: Timeline = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    return tl


def worker_entry(
    worker_main: Callable[[P, Connection], Coroutine[Any, Any, R]], plan: P, conn: Connection
) -> None:
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
class RunOutcome(Generic[R]):
    results: list[R]
    timeline: Timeline
    server_cpu_s: float | None
    machine_cpu_s: float | None = None  # every process's, all cores, in the measured window


def run_workers(
    worker_main: Callable[[P, Connection], Coroutine[Any, Any, R]],
    plans: Sequence[P],
    args: BenchArgs,
    *,
    after_s: float,
    ready_timeout_s: float,
    server_pid: int | None,
    log: Callable[[str], None],
) -> RunOutcome[R]:
    """Spawn one process per plan running `worker_main`; once all are ready, give them one
    timeline (warm-up, measured window, then `after_s`) and gather their results."""
    ctx = mp.get_context("spawn")
    conns: list[Connection] = []
    procs: list[Any] = []
    try:
        for plan in plans:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_entry, args=(worker_main, plan, child), daemon=True)
            proc.start()
            child.close()
            conns.append(parent)
            procs.append(proc)
        collect(conns, "ready", ready_timeout_s)
        start = time.monotonic() + START_DELAY_S
        measure_from = start + args.warmup_s
        stop_sending = measure_from + args.duration_s
        tl = Timeline(start, measure_from, stop_sending, stop_sending + after_s)
        for conn in conns:
            conn.send(tl)
        log(f"running: {args.warmup_s:g} s warm-up, {args.duration_s:g} s measured")
        sleep_until(tl.measure_from)
        cpu_from, busy_from = cpu_seconds(server_pid), machine_busy_seconds()
        sleep_until(tl.stop_sending)
        cpu_to, busy_to = cpu_seconds(server_pid), machine_busy_seconds()
        results: list[R] = collect(conns, "result", after_s + 60)
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
    cpu = None if cpu_from is None or cpu_to is None else cpu_to - cpu_from
    busy = None if busy_from is None or busy_to is None else busy_to - busy_from
    return RunOutcome(results, tl, cpu, busy)


# --- figures and the report ---------------------------------------------------------------


def percentile(ordered: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return None
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


def counts_text(counts: Mapping[str, int]) -> str:
    """`a=1,b=2`, sorted by name; `none` when empty."""
    return ",".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none"


def cpu_figures(
    server_cpu_s: float | None, duration_s: float, loadgen_cpu_s: float
) -> dict[str, Any]:
    """The last figures of the measured run: the server's CPU and the load generator's."""
    return {
        "server_cpu_s": server_cpu_s,
        "server_cpu_cores": None if server_cpu_s is None else server_cpu_s / duration_s,
        "loadgen_cpu_s": loadgen_cpu_s,
    }


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


def logger(prog: str) -> Callable[[str], None]:
    """A progress line on stderr, `[prog] text`."""

    def log(text: str) -> None:
        print(f"[{prog}] {text}", file=sys.stderr, flush=True)

    return log


# --- main ---------------------------------------------------------------------------------


def bench_main(
    prog: str,
    args: BenchArgs,
    benchmark: Callable[[Server], tuple[dict[str, Any], list[str]]],
    *,
    sockets: int,
    too_many_sockets: str,
    audit_token_needed: bool,
) -> int:
    """Start the server (or take `--url`'s), run `benchmark` on it, stop it, print the report.

    `sockets` is how many the run opens (the server is allowed 1000 more per IP); the run
    refuses to start, with `prog: {too_many_sockets} {limit}`, unless 256 more than that are
    within the open-file limit. With `--url`, `audit_token_needed` takes the admin token from
    `GIFTCAST_ADMIN_TOKEN`. The exit status: 0 pass, 1 a check failed, 2 set-up failure,
    130 interrupted.
    """
    nofile = raise_nofile_limit()
    if sockets + 256 > nofile:
        print(f"{prog}: {too_many_sockets} {nofile}", file=sys.stderr)
        return 2
    log = logger(prog)
    server: Server | None = None
    exit_code: int | None = 0
    try:
        if args.url is not None:
            token = ""
            if audit_token_needed:
                token = os.environ.get("GIFTCAST_ADMIN_TOKEN", "")
                if not token:
                    raise BenchError("with --url, set GIFTCAST_ADMIN_TOKEN (the audit needs it)")
            server = Server(loopback_base_url(args.url), token, args.server_pid)
        else:
            server = start_server(args.rate_per_user, sockets + 1000, args.settings)
            log(f"started server pid {server.pid} at {server.base_url}")
        figures, failures = benchmark(server)
    except BenchError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; the server and workers were stopped", file=sys.stderr)
        return 130
    finally:
        if server is not None and server.proc is not None:
            exit_code = stop_server(server)
    if server.proc is not None:
        figures["server_exit_code"] = "killed" if exit_code is None else exit_code
        if exit_code != 0:
            failures.append(f"the server exited with {exit_code} on SIGTERM (the contract says 0)")
    report(f"giftcast {prog}", figures, failures, args.json_path)
    return 1 if failures else 0
