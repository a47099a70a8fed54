"""The peer servers `bench_peers.py` measures giftcast against: how to start and stop them.

Each peer is a small program under `scripts/peers/` speaking the peer protocol (see
`scripts/peers/ws_broadcast.py`): it prints `peer listening on 127.0.0.1:PORT`, fans out what
`/publish` sends to every viewer, and stops on SIGTERM.

The Node peer needs `node` and `npm`: before its first run, `npm ci` installs the `ws` version
pinned in `scripts/peers/node_ws/package-lock.json` into `node_modules/` (ignored by git).
Without them `node_problem` says so, and the benchmark leaves that peer out, saying why.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from scripts.benchkit import REPO_ROOT, BenchError, log_tail
from server.loadtest.serverproc import spawn_listening, stop_process

PEERS_DIR = REPO_ROOT / "scripts" / "peers"
NODE_DIR = PEERS_DIR / "node_ws"
LISTENING_RE = re.compile(rb"peer listening on 127\.0\.0\.1:(\d+)")
LISTEN_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
NPM_TIMEOUT_S = 300.0

GIFTCAST = "giftcast"
PEER_NAMES = ("ws_broadcast", "starlette_naive", "node_ws")
SERVER_NAMES = (GIFTCAST, *PEER_NAMES)
PEER_TITLES = {
    GIFTCAST: "giftcast (coalesced batch frames)",
    "ws_broadcast": "websockets.broadcast (Python floor)",
    "starlette_naive": "Starlette, await send_text per viewer",
    "node_ws": "Node ws, send per viewer",
}


@dataclass(slots=True)
class PeerServer:
    name: str
    proc: subprocess.Popen[bytes]
    tmpdir: Path
    host_port: str = ""

    @property
    def pid(self) -> int:
        return self.proc.pid


def peer_command(name: str) -> list[str]:
    if name == "node_ws":
        return [shutil.which("node") or "node", str(NODE_DIR / "server.js"), "--port", "0"]
    if name in PEER_NAMES:
        return [sys.executable, str(PEERS_DIR / f"{name}.py"), "--port", "0"]
    raise BenchError(f"no peer named {name!r}; the peers are {', '.join(PEER_NAMES)}")


def node_problem() -> str:
    """Why the Node peer cannot run here ('' when it can); installs `ws` with `npm ci` once."""
    if shutil.which("node") is None:
        return "`node` is not on PATH: install Node.js (18 or later) to measure the Node ws peer"
    if (NODE_DIR / "node_modules" / "ws" / "package.json").is_file():
        return ""
    npm = shutil.which("npm")
    if npm is None:
        return "`npm` is not on PATH: it installs the Node peer's `ws` package"
    cmd = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    try:
        done = subprocess.run(
            cmd, cwd=NODE_DIR, capture_output=True, timeout=NPM_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return f"`npm ci` in {NODE_DIR} took over {NPM_TIMEOUT_S:g} s"
    if done.returncode != 0:
        output = (done.stdout + done.stderr).decode(errors="replace")[-1500:]
        return f"`npm ci` in {NODE_DIR} failed ({done.returncode}):\n{output}"
    return ""


def start_peer(name: str) -> PeerServer:
    """Start peer `name` on a free loopback port and wait for its listening line."""
    cmd = peer_command(name)
    tmpdir = Path(tempfile.mkdtemp(prefix=f"giftcast-peer-{name}-"))
    log_path = tmpdir / "peer.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTCAST_")}
    proc, match = spawn_listening(
        cmd,
        cwd=REPO_ROOT,
        env=env,
        log_path=log_path,
        listening=LISTENING_RE,
        timeout_s=LISTEN_TIMEOUT_S,
    )
    peer = PeerServer(name, proc, tmpdir)
    if match:
        peer.host_port = f"127.0.0.1:{int(match.group(1))}"
        return peer
    tail = log_tail(log_path)
    stop_peer(peer)
    raise BenchError(f"peer {name} did not report 'peer listening on ...' in time:\n{tail}")


def stop_peer(peer: PeerServer) -> str:
    """SIGTERM, then SIGKILL after 10 s (an overloaded peer may still be working through its
    backlog); remove its temp dir. Its log if it had exited by itself or failed, else ''."""
    proc, problem = peer.proc, ""
    if proc.poll() is not None:
        problem = f"peer {peer.name} exited by itself with {proc.returncode}:\n"
        problem += log_tail(peer.tmpdir / "peer.log")
    else:
        stop_process(proc, STOP_TIMEOUT_S)
    if not problem and proc.returncode not in (0, -signal.SIGTERM, -signal.SIGKILL):
        problem = f"peer {peer.name} exited with {proc.returncode}:\n"
        problem += log_tail(peer.tmpdir / "peer.log")
    shutil.rmtree(peer.tmpdir, ignore_errors=True)
    return problem
