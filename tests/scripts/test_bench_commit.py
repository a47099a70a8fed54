"""`scripts/bench_commit.py` end to end on a small ledger: it prints its figures and checks the
money (audit balanced, every gift accepted, coins debited = gifts)."""

from __future__ import annotations

import subprocess
import sys

from tests.scripts.scriptrun import REPO_ROOT, run_script


def test_a_small_run_passes_and_prints_its_figures() -> None:
    small = ["--senders", "40", "--rooms", "4", "--batch", "30", "--batches", "6", "--warmup", "2"]
    status, output = run_script("bench_commit.py", *small)
    assert status == 0, output
    figures = dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
    assert figures["gifts_accepted"] == str(8 * 30), output
    assert figures["coins_debited"] == str(8 * 30), output  # the cheapest gift costs 1 coin
    assert figures["audit_balanced"] == "true", output
    assert float(figures["us_per_gift_wall"]) > 0, output
    assert output.rstrip().endswith("result: PASS"), output


def test_bad_arguments_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/bench_commit.py", "--rooms", "5", "--senders", "2"],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert b"--rooms must be" in done.stderr
