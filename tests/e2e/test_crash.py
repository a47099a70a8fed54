"""A short run of `scripts/crash_test.py` in the suite: real `giftcast serve` processes, gifts
from several clients, and at a random moment under that load the server killed (SIGKILL),
stopped (SIGTERM), its disk filled, or its database write-locked by another process; then
(restarted on the same SQLite file when it stopped) the money is checked to the last coin.

The script itself runs 20 rounds or more; here a few rounds keep it to seconds.
"""

from __future__ import annotations

from pathlib import Path

from scripts.crash_test import Fault, run_rounds


async def test_sigkill_at_random_moments_loses_no_acknowledged_gift(tmp_path: Path) -> None:
    figures = await run_rounds(tmp_path, rounds=3, clients_n=4, seed=11, fault=Fault.KILL)
    assert figures.problems == []
    assert figures.rounds == 3
    assert figures.gifts_acknowledged > 0
    assert figures.lost == 0


async def test_sigterm_under_load_answers_every_committed_gift_and_exits_0(
    tmp_path: Path,
) -> None:
    figures = await run_rounds(tmp_path, rounds=2, clients_n=12, seed=5, fault=Fault.TERM)
    assert figures.problems == []
    assert figures.gifts_acknowledged > 0
    assert figures.committed_unanswered == 0
    assert figures.lost == 0


async def test_a_full_disk_under_load_answers_unavailable_and_resumes(tmp_path: Path) -> None:
    figures = await run_rounds(tmp_path, rounds=2, clients_n=6, seed=3, fault=Fault.DISK)
    assert figures.problems == []
    assert figures.refused_unavailable > 0  # the fault was felt...
    assert figures.committed_unanswered == 0  # ...and no gift was applied without an answer
    assert figures.lost == 0


async def test_a_write_lock_held_under_load_answers_unavailable_and_resumes(
    tmp_path: Path,
) -> None:
    figures = await run_rounds(tmp_path, rounds=2, clients_n=6, seed=4, fault=Fault.LOCK)
    assert figures.problems == []
    assert figures.refused_unavailable > 0
    assert figures.committed_unanswered == 0
    assert figures.lost == 0
