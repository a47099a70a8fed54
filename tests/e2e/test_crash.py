"""A short run of `scripts/crash_test.py` in the suite: real `giftcast serve` processes, gifts
from several clients, the server killed (SIGKILL) or stopped (SIGTERM) at a random moment under
that load, restarted on the same SQLite file, and the money checked to the last coin.

The script itself runs 20 rounds or more; here a few rounds keep it to seconds.
"""

from __future__ import annotations

import signal
from pathlib import Path

from scripts.crash_test import run_rounds


async def test_sigkill_at_random_moments_loses_no_acknowledged_gift(tmp_path: Path) -> None:
    figures = await run_rounds(tmp_path, rounds=3, clients_n=4, seed=11, sig=signal.SIGKILL)
    assert figures.problems == []
    assert figures.rounds == 3
    assert figures.gifts_acknowledged > 0
    assert figures.lost == 0


async def test_sigterm_under_load_answers_every_committed_gift_and_exits_0(
    tmp_path: Path,
) -> None:
    figures = await run_rounds(tmp_path, rounds=2, clients_n=12, seed=5, sig=signal.SIGTERM)
    assert figures.problems == []
    assert figures.gifts_acknowledged > 0
    assert figures.committed_unanswered == 0
    assert figures.lost == 0
