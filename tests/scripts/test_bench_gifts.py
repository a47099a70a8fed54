"""`scripts/bench_gifts.py` end to end on a small load: a real server, the epoll senders in
their worker processes, closed loop and paced; the money must balance and every answer keep
the contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.scripts.scriptrun import run_bench as run_script_bench


def run_bench(
    tmp_path: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    return run_script_bench(tmp_path, "bench_gifts.py", *extra, timeout_s=120, env=env)


def assert_money_and_contract_hold(output: str, doc: dict[str, Any]) -> None:
    assert doc["result"] == "PASS" and "\nresult: PASS\n" in output, output
    assert doc["audit_balanced"] is True, doc
    assert doc["gifts_acked"] > 0, doc
    assert doc["coins_acked"] == doc["coins_debited"] == doc["gifts_acked"], doc  # a Rose: 1
    assert doc["diamonds_acked"] == doc["host_diamonds_gained"] > 0, doc
    assert (doc["seq_doubled"], doc["lost"], doc["contract_violations"]) == (0, 0, 0), doc
    assert doc["gifts_sent"] == doc["gifts_acked"] + doc["errors"], doc
    cores = [float(c) for c in doc["loadgen_worker_cores"].split(",")]
    assert len(cores) == doc["workers"] and all(0 < c < 1.5 for c in cores), doc
    assert abs(doc["loadgen_cpu_s"] - sum(cores) * doc["duration_s"]) < 0.05, doc


def test_closed_loop_senders_keep_one_gift_outstanding(tmp_path: Path) -> None:
    output, doc = run_bench(
        tmp_path, "--senders", "30", "--rooms", "3", "--duration", "2", "--warmup", "0.5"
    )
    assert_money_and_contract_hold(output, doc)
    assert doc["loop"] == "closed" and doc["in_flight_max"] == 1, doc
    assert doc["gifts_per_s_offered"] is None and doc["capped_sends"] is None, doc
    assert doc["gifts_acked_measured"] == doc["gifts_per_s_acked"] * doc["duration_s"], doc
    assert 0 < doc["ack_latency_ms_p50"] <= doc["ack_latency_ms_p99"], doc


def test_paced_senders_keep_their_schedule(tmp_path: Path) -> None:
    senders, pace, duration, warmup = 20, 10.0, 2.0, 0.5
    output, doc = run_bench(
        tmp_path,
        *("--senders", str(senders), "--rooms", "2", "--pace", str(pace)),
        *("--duration", str(duration), "--warmup", str(warmup)),
    )
    assert_money_and_contract_hold(output, doc)
    assert doc["loop"] == "open, 10 gifts/s per sender" and doc["in_flight_max"] == 32, doc
    assert doc["gifts_per_s_offered"] == senders * pace, doc
    # Every gift due before the end of sending was sent, on its schedule, and answered.
    assert abs(doc["gifts_sent"] - senders * pace * (warmup + duration)) <= senders, doc
    assert doc["gifts_unsent"] == 0 and doc["errors"] == 0, doc
    assert abs(doc["gifts_acked_measured"] - senders * pace * duration) <= senders, doc
    assert 0.8 * senders * pace <= doc["gifts_per_s_acked"] <= 1.2 * senders * pace, doc
    assert 0 < doc["ack_latency_ms_p50"] <= doc["ack_latency_ms_p99"] < 5000, doc
