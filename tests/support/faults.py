"""Real faults for the storage tests: another process holding SQLite's write lock, and a
server process whose file-size limit is lowered from outside (the disk "fills up").

Nothing here reaches into the server: the faults are made by the operating system and by
SQLite itself, as they would be in production.
"""

from __future__ import annotations

import asyncio
import resource
import sys
from pathlib import Path

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
