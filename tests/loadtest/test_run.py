"""`giftcast loadtest` as a real process: a short run that passes and writes both reports, a
run against a `giftcast serve` of our own, and verification failing loudly when the run's
record and the server's ledger disagree."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.live import ADMIN_TOKEN
from tests.support.process import ServerProcess

REPO = Path(__file__).resolve().parents[2]
SMALL = [
    "--duration", "3", "--rooms", "3", "--viewers", "14", "--senders", "4", "--overlays", "1",
    "--workers", "2", "--sender-pause-s", "0.3", "--drop-per-min", "10", "--churn-per-min", "10",
]  # fmt: skip


def loadtest(*args: str, timeout: float = 100) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "loadtest", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_a_short_run_on_its_own_server_passes_and_writes_both_reports(tmp_path: Path) -> None:
    done = loadtest(*SMALL, "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "VERIFICATION PASSED" in done.stdout

    doc: dict[str, Any] = json.loads((tmp_path / "out" / "report.json").read_text())
    totals, checked = doc["totals"], doc["verification"]["checked"]
    assert doc["verification"] == {"passed": True, "checked": checked, "problems": []}
    assert doc["scenario"]["rooms"] == 3 and doc["scenario"]["duration_s"] == 3.0
    assert totals["gifts_acked"] > 0
    assert checked["acknowledged gifts"] == totals["gifts_acked"]
    assert checked["ledger gifts"] == totals["gifts_acked"] + totals["unresolved"]
    assert checked["sampled streams"] >= 3 + 1  # at least one viewer a room, and the overlay
    assert totals["signups"] >= 14  # every viewer signed up over HTTP (churn adds more)
    assert totals["sockets_peak"] == 14 + 1
    assert doc["latency"]["ack"]["n"] == totals["gifts_acked"]
    assert doc["latency"]["ack"]["p50_ms"] <= doc["latency"]["ack"]["p99_ms"]
    assert doc["latency"]["delivery"]["n"] > 0
    measured = [s for s in doc["seconds"] if 0 <= s["t"] < 3]
    assert [s["t"] for s in measured] == [0, 1, 2]
    assert sum(s["gifts_acked"] for s in doc["seconds"]) == totals["gifts_acked"]
    assert doc["cpu"]["server_cores_mean"] is not None

    page = (tmp_path / "out" / "report.html").read_text()
    for title in ("Latency over time", "Gift throughput over time", "CPU over time"):
        assert f"<title>{title}</title>" in page
    assert page.count("<svg") == 4 and page.count("<polyline") >= 4
    assert "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    ).replace("own server", "")
    assert "Verification: PASS" in page


async def test_verification_fails_loudly_when_record_and_ledger_disagree(tmp_path: Path) -> None:
    server = await ServerProcess.start(
        tmp_path,
        {
            "GIFTCAST_ADMIN_TOKEN": ADMIN_TOKEN,
            "GIFTCAST_DATA_DIR": str(tmp_path / "data"),
        },
    )
    try:
        out = tmp_path / "out"
        target = ["--url", server.url, "--admin-token", ADMIN_TOKEN]
        done = await asyncio.to_thread(loadtest, *SMALL, *target, "--out", str(out))
        assert done.returncode == 0, done.stdout + done.stderr
        record = json.loads((out / "record.json").read_text())
        assert record["acks"], record

        again = await asyncio.to_thread(
            loadtest, "--verify-only", str(out / "record.json"), *target
        )
        assert again.returncode == 0, again.stdout + again.stderr
        assert "VERIFICATION PASSED" in again.stdout

        # The ledger holds a gift the run (as recorded) was never acknowledged.
        forgotten = record["acks"].pop(0)
        (tmp_path / "forgot.json").write_text(json.dumps(record))
        failed = await asyncio.to_thread(
            loadtest, "--verify-only", str(tmp_path / "forgot.json"), *target
        )
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "VERIFICATION FAILED" in failed.stdout
        assert (
            f"the ledger holds gift request {forgotten[2]!r} of sender {forgotten[1]}"
            in failed.stdout
        ), failed.stdout

        # An acknowledgement the ledger lacks.
        record["acks"].insert(0, forgotten)
        record["acks"].append([forgotten[0], forgotten[1], "never-sent", 999_999, "rose", 1, 1, 1])
        (tmp_path / "phantom.json").write_text(json.dumps(record))
        failed = await asyncio.to_thread(
            loadtest, "--verify-only", str(tmp_path / "phantom.json"), *target
        )
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "acknowledged request 'never-sent'" in failed.stdout
        assert "is missing from the ledger" in failed.stdout
    finally:
        await server.terminate()


def test_a_remote_target_is_refused_without_allow_remote(tmp_path: Path) -> None:
    done = loadtest("--url", "http://10.255.0.1:8000", "--admin-token", "x")
    assert done.returncode == 2
    assert "refusing 10.255.0.1" in done.stderr
