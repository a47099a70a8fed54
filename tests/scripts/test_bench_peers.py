"""`scripts/bench_peers.py --quick` end to end: giftcast and every peer, real processes, 50
viewers for 2 s each; every server must deliver every event to every viewer, and the table
must print. The Node peer is part of it: without `node` and `npm` this test fails, never skips.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from scripts.peerkit import PEER_TITLES, SERVER_NAMES
from tests.scripts.scriptrun import run_bench as run_script_bench


def run_bench(
    tmp_path: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    return run_script_bench(tmp_path, "bench_peers.py", "--quick", *extra, timeout_s=100, env=env)


def test_every_server_delivers_every_event(tmp_path: Path) -> None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not on PATH: the peer benchmark measures the Node ws peer "
            "too; install Node.js 18+ with npm (Debian: apt-get install nodejs npm)"
            + (" [CI=true]" if os.environ.get("CI") == "true" else "")
        )
    output, doc = run_bench(tmp_path)
    rows = {row["server"]: row for row in doc["rows"]}
    assert sorted(rows) == sorted(SERVER_NAMES), output
    for name, row in rows.items():
        published, viewers = row["events_published"], row["viewers"]
        assert viewers == 50 and published >= 50, (name, row)
        assert row["deliveries"] == viewers * published, (name, row)
        assert (row["missing"], row["gaps"], row["repeated"]) == (0, 0, 0), (name, row)
        assert row["sockets_closed_by_server"] == {}, (name, row)
        assert row["latency_ms_p99"] is not None and row["server_peak_rss_mib"], (name, row)
    assert rows["giftcast"]["lost_requests"] == 0 and rows["giftcast"]["errors"] == {}
    # The peers get events the size of giftcast's own gift events.
    sizes = [row["event_bytes"] for row in rows.values()]
    assert max(sizes) < 1.2 * min(sizes), sizes
    assert "| server | viewers | events/s delivered | giftcast x |" in output
    for name in SERVER_NAMES:
        assert f"| {PEER_TITLES[name]} | 50 |" in output
    assert doc["result"] == "PASS" and "\nresult: PASS\n" in output


def test_without_node_the_node_peer_is_named_as_not_measured(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    assert shutil.which("node", path=env["PATH"]) is None
    output, doc = run_bench(tmp_path, "--servers", "node_ws,ws_broadcast", env=env)
    assert "node_ws NOT MEASURED: `node` is not on PATH" in output
    assert [row["server"] for row in doc["rows"]] == ["ws_broadcast"]
    assert doc["rows"][0]["missing"] == 0
