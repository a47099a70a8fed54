"""`scripts/bench_fanout.py` end to end on a small load: a real server, the epoll viewers and
the open-loop senders in their worker processes; every viewer must get every event once, in
order, and the load generator's CPU must be reported, per worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.scripts.scriptrun import run_bench as run_script_bench


def run_bench(
    tmp_path: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    return run_script_bench(tmp_path, "bench_fanout.py", *extra, timeout_s=120, env=env)


def test_every_viewer_gets_every_gift_once_and_in_order(tmp_path: Path) -> None:
    viewers, rate, duration = 120, 50.0, 2.0
    output, doc = run_bench(
        tmp_path,
        *("--viewers", str(viewers), "--senders", "5", "--rate", str(rate)),
        *("--duration", str(duration), "--warmup", "0.5", "--drain", "2"),
    )
    assert doc["result"] == "PASS" and "\nresult: PASS\n" in output, output
    sent = rate * (0.5 + duration)
    assert doc["gifts_sent"] == doc["gifts_acked"] and abs(doc["gifts_sent"] - sent) <= 5, doc
    assert doc["seq_last"] - doc["seq_first"] + 1 == doc["gifts_acked"], doc
    assert (doc["lost_events"], doc["doubled_events"], doc["out_of_order"]) == (0, 0, 0), doc
    assert (doc["lost_requests"], doc["errors"], doc["contract_violations"]) == (0, 0, 0), doc
    # Every viewer is sampled at this size; each received the window's gifts.
    assert doc["latency_viewers_sampled"] == viewers, doc
    assert doc["events_delivered_per_s"] >= 0.7 * viewers * rate, doc
    assert 0 < doc["delivery_latency_ms_p50"] <= doc["delivery_latency_ms_p99"] < 5000, doc
    # Two viewer processes and the senders' process, each with its share of a core.
    cores = [float(c) for c in doc["loadgen_worker_cores"].split(",")]
    assert len(cores) == 3 and all(0 < c < 1.5 for c in cores), doc
    assert doc["loadgen_viewers_cpu_s"] > 0 and doc["loadgen_senders_cpu_s"] > 0, doc
    total = doc["loadgen_viewers_cpu_s"] + doc["loadgen_senders_cpu_s"]
    assert abs(doc["loadgen_cpu_s"] - total) < 1e-6, doc
    assert doc["loadgen_saturated"] is False or "warning: load generator worker" in output
