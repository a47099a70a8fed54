"""A room's flush pacing: a big room's flushes are spaced by what they cost, within bounds."""

from __future__ import annotations

import pytest

from server.config import ConfigError, Settings
from server.web.hub import FLUSH_BUSY_FACTOR, flush_gap_s


@pytest.mark.parametrize(
    ("last_duration_s", "gap_s"),
    [
        (0.0, 0.1),  # a small room: the configured window
        (0.0001, 0.1),  # 10 sockets
        (0.0666, 0.1),  # just under two thirds of the window
        (0.05, 0.1),
        (0.1, 0.15),  # 5,000 sockets at ~20 us a write
        (0.2, 0.3),
        (0.4, 0.5),  # capped
        (5.0, 0.5),
    ],
)
def test_the_gap_is_one_and_a_half_times_the_last_flush_within_bounds(
    last_duration_s: float, gap_s: float
) -> None:
    assert FLUSH_BUSY_FACTOR == 1.5
    assert flush_gap_s(0.1, 0.5, last_duration_s) == pytest.approx(gap_s)


def test_the_longest_gap_cannot_be_shorter_than_the_window() -> None:
    with pytest.raises(ConfigError, match="fanout_flush_max_ms"):
        Settings(fanout_flush_ms=200, fanout_flush_max_ms=100).validate()
    Settings(fanout_flush_ms=200, fanout_flush_max_ms=200).validate()
