"""A `giftcast serve` of the run's own: a child process on a free loopback port and a
temporary SQLite database, with a random admin token, stopped with SIGTERM at the end.

The server gets the default settings (the contract's rate limit included) except the cap on
sockets per client address, raised to the run's `--clients` cap: every simulated viewer
comes from 127.0.0.1. Its CPU time is read from /proc for the reports.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

LISTENING = re.compile(rb"giftcast listening on http://([^\s/]+):(\d+)")
LISTEN_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0


class ServerStartError(Exception):
    """Our own server did not come up; the message carries its log's tail."""


@dataclass(slots=True)
class OwnServer:
    base_url: str
    admin_token: str
    proc: subprocess.Popen[bytes]
    tmpdir: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return (self.tmpdir / "server.log").read_bytes()[-chars:].decode(errors="replace")
        except OSError:
            return "(no server log)"

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after a while; the exit status (None: killed). Removes the
        temporary directory."""
        code: int | None = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        else:
            code = self.proc.returncode
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        return code


def start(connections_per_ip_max: int) -> OwnServer:
    tmpdir = Path(tempfile.mkdtemp(prefix="giftcast-loadtest-"))
    token = secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTCAST_")}
    env |= {
        "GIFTCAST_ADMIN_TOKEN": token,
        "GIFTCAST_DATA_DIR": str(tmpdir),
        "GIFTCAST_CONNECTIONS_PER_IP_MAX": str(connections_per_ip_max),
    }
    cmd = [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", "0"]
    cmd += ["--db", f"sqlite:///{tmpdir}/loadtest.db"]
    log_path = tmpdir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=tmpdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    server = OwnServer("", token, proc, tmpdir)
    deadline = time.monotonic() + LISTEN_TIMEOUT_S
    while time.monotonic() < deadline:
        found = LISTENING.search(log_path.read_bytes())
        if found:
            server.base_url = f"http://127.0.0.1:{int(found.group(2))}"
            return server
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = server.log_tail()
    server.stop()
    raise ServerStartError(f"the server did not start listening in time:\n{tail}")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads), from /proc/PID/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
