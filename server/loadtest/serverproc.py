"""A `giftcast serve` of the run's own: a child process on a free loopback port and a
temporary SQLite database, with a random admin token, stopped with SIGTERM at the end.

`spawn_listening` and `stop_process` are the generic halves (start a server process, wait for
the line its log prints once it listens; SIGTERM, then SIGKILL), also used by the benchmarks
under scripts/.

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
        code = stop_process(self.proc, STOP_TIMEOUT_S)
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        return code


def server_env(admin_token: str, data_dir: Path, settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without any GIFTCAST_* of its own, then the admin token, the
    data directory and `settings` (`{"gift_burst": "20"}` -> GIFTCAST_GIFT_BURST=20)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTCAST_")}
    env |= {"GIFTCAST_ADMIN_TOKEN": admin_token, "GIFTCAST_DATA_DIR": str(data_dir)}
    env |= {f"GIFTCAST_{name.upper()}": value for name, value in settings.items()}
    return env


def serve_command(db_path: Path) -> list[str]:
    """`python -m server serve` on a free loopback port, on an SQLite file."""
    cmd = [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", "0"]
    return [*cmd, "--db", f"sqlite:///{db_path}"]


def spawn_listening(
    cmd: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    listening: re.Pattern[bytes],
    timeout_s: float,
) -> tuple[subprocess.Popen[bytes], re.Match[bytes] | None]:
    """Start `cmd` with its output in `log_path`; wait until the log matches `listening`.

    The match, or None when the process exited or `timeout_s` passed first (the process may
    then still run: stop it)."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = listening.search(log_path.read_bytes())
        if found:
            return proc, found
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    return proc, None


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float) -> int | None:
    """SIGTERM, then SIGKILL after `timeout_s`; the exit status (None: it had to be killed)."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def start(connections_per_ip_max: int) -> OwnServer:
    tmpdir = Path(tempfile.mkdtemp(prefix="giftcast-loadtest-"))
    token = secrets.token_urlsafe(24)
    env = server_env(token, tmpdir, {"connections_per_ip_max": str(connections_per_ip_max)})
    proc, found = spawn_listening(
        serve_command(tmpdir / "loadtest.db"),
        cwd=tmpdir,
        env=env,
        log_path=tmpdir / "server.log",
        listening=LISTENING,
        timeout_s=LISTEN_TIMEOUT_S,
    )
    server = OwnServer("", token, proc, tmpdir)
    if found:
        server.base_url = f"http://127.0.0.1:{int(found.group(2))}"
        return server
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
