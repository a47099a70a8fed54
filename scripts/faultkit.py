"""What `crash_test.py` and the fault tests share: a `giftcast serve` process that can be
killed and started again on the same data, the faults themselves, and a small client.

The faults are made by the operating system and by SQLite, as they would be in production:
another process holding SQLite's write lock, and a running server's file-size limit lowered
from outside (`prlimit`), so every write to its files fails with EFBIG as on a full disk
(Python ignores SIGXFSZ, so the process gets the error instead of dying).
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import resource
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

ADMIN_TOKEN = "crash-test-admin"
LISTENING = re.compile(rb"giftcast listening on http://127\.0\.0\.1:(\d+)")
PACKAGE_ID, PACKAGE_COINS = "coins_33035", 33035
ROSE_COINS = 1  # and 1 diamond a coin (the default catalog and rates)
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


class Server:
    """`python -m server serve` on the same data directory each time it is started."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.env = env or {}
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""
        self.starts = 0
        self._copier: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.starts += 1
        log_path = self.workdir / f"server-{self.starts}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTCAST_")}
        env |= {
            "GIFTCAST_ADMIN_TOKEN": ADMIN_TOKEN,
            "GIFTCAST_GIFT_RATE_PER_S": "100000",
            "GIFTCAST_GIFT_BURST": "100000",
            **self.env,
        }
        # The log goes through a pipe, copied to a file here: it survives a full disk.
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "server", "serve", "--host", "127.0.0.1", "--port", "0"),
            cwd=self.workdir,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        self._copier = asyncio.create_task(copy_lines(self.proc.stdout, log_path.open("wb")))
        for _ in range(int(START_TIMEOUT_S / 0.05)):
            found = LISTENING.search(log_path.read_bytes())
            if found:
                self.url = f"http://127.0.0.1:{int(found.group(1))}"
                return
            if self.proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        await self.kill()
        raise RuntimeError(f"the server did not start:\n{log_path.read_text()[-3000:]}")

    @property
    def db(self) -> Path:
        return self.workdir / "data" / "giftcast.db"

    async def signal(self, sig: signal.Signals) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), 30)
        await self._copied()
        return code

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        await self._copied()

    async def _copied(self) -> None:
        if self._copier is not None:
            await asyncio.wait_for(self._copier, 10)
            self._copier = None

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("*.log")))


async def copy_lines(stream: asyncio.StreamReader, out: BinaryIO) -> None:
    """Copy a child's piped output to `out`, line by line, until the child closes it."""
    try:
        while line := await stream.readline():
            out.write(line)
            out.flush()
    finally:
        out.close()


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


def gift_frame(request_id: str) -> str:
    return orjson.dumps({"type": "gift", "id": request_id, "gift_id": "rose", "count": 1}).decode()


# Takes the write lock with BEGIN IMMEDIATE, says so, and holds it until told to let go.
_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
conn.close()
print("released", flush=True)
"""

# Tries to take the write lock without waiting (busy_timeout 0): "free" or "busy".
_PROBE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
try:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("ROLLBACK")
    print("free")
except sqlite3.OperationalError as exc:
    print("busy", exc)
"""


class WriteLockHolder:
    """Another process holding the database's write lock, as a backup tool or a stuck
    script would."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def hold(cls, db: Path) -> WriteLockHolder:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _HOLDER,
            str(db),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert line == b"locked\n", line
        return cls(proc)

    async def release(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"go\n")
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), 10)
        assert line == b"released\n", line
        assert await asyncio.wait_for(self.proc.wait(), 10) == 0

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def write_lock_is_free(db: Path) -> str:
    """'free' when another process can take the write lock at once, else 'busy ...'."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _PROBE, str(db), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 10)
    return out.decode().strip()


def limit_file_size(pid: int, size_bytes: int | None) -> None:
    """Lower (or, with None, restore) the running process's RLIMIT_FSIZE: past the limit every
    write to a regular file fails with EFBIG, as on a full disk (Python ignores SIGXFSZ)."""
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    soft = hard if size_bytes is None else size_bytes
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))


# --- a real full disk: a small tmpfs (needs root, so only the script uses it) -------------


def mount_tmpfs(path: Path, size_mib: int) -> None:
    """Mount a tmpfs of `size_mib` at `path`; raises PermissionError without root."""
    if os.geteuid() != 0:
        raise PermissionError("mounting a tmpfs needs root; use --fault disk (prlimit) instead")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(path)], check=True
    )


def unmount(path: Path) -> None:
    subprocess.run(["umount", str(path)], check=False)


def fill_disk(directory: Path) -> Path:
    """Write a filler file until the filesystem answers ENOSPC; the filler's path."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return filler
