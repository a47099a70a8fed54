"""The real `giftcast serve` process, started as a user would, for signal and restart tests."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path
from typing import BinaryIO

LISTENING = re.compile(r"giftcast listening on http://([\d.]+):(\d+) \(db: (\S+), broker: (\S+)\)")


class ServerProcess:
    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path
        self.port = 0
        self.db = ""
        self._copier: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @classmethod
    async def start(
        cls,
        cwd: Path,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        piped_log: bool = False,
    ) -> ServerProcess:
        """Start `python -m server serve --port 0` in `cwd` and wait for its listening line.

        `piped_log`: the server writes its log to a pipe that this process copies to the log
        file, so the log survives faults that stop the server writing to files."""
        log_path = cwd / f"server-{os.getpid()}-{len(list(cwd.glob('server-*.log')))}.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTCAST_")}
        full_env.update(env or {})
        out = log_path.open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server",
            "serve",
            "--port",
            "0",
            *args,
            cwd=cwd,
            env=full_env,
            stdout=asyncio.subprocess.PIPE if piped_log else out,
            stderr=asyncio.subprocess.STDOUT,
        )
        server = cls(proc, log_path)
        if piped_log:
            assert proc.stdout is not None
            server._copier = asyncio.create_task(_copy(proc.stdout, out))
        else:
            out.close()
        for _ in range(300):
            found = LISTENING.search(server.log())
            if found:
                server.port, server.db = int(found.group(2)), found.group(3)
                return server
            if proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        await server.kill()
        raise RuntimeError(f"giftcast did not start:\n{server.log()}")

    async def terminate(self, timeout: float = 20) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await self._copied()
        return code

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        await self._copied()

    async def _copied(self) -> None:
        if self._copier is not None:
            await asyncio.wait_for(self._copier, 10)


async def _copy(stream: asyncio.StreamReader, out: BinaryIO) -> None:
    """Copy the server's piped log to `out`, line by line, until the server closes it."""
    try:
        while line := await stream.readline():
            out.write(line)
            out.flush()
    finally:
        out.close()
