"""Percentiles and the mergeable latency histogram."""

from __future__ import annotations

import random

import pytest

from server.loadtest.stats import Histogram, Second, Tick, bucket_of, bucket_top_ms, percentile


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([7.0], 50, 7.0),
        ([7.0], 100, 7.0),
        ([1, 2, 3, 4], 50, 2),
        ([1, 2, 3, 4], 75, 3),
        ([1, 2, 3, 4], 76, 4),
        ([4, 3, 2, 1], 25, 1),  # order does not matter
        (list(range(1, 101)), 99, 99),
        (list(range(1, 101)), 100, 100),
        (list(range(1, 1001)), 99.9, 999),
    ],
)
def test_nearest_rank_percentile(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


@pytest.mark.parametrize("q", [0, -1, 100.5])
def test_percentile_refuses_q_out_of_range(q: float) -> None:
    with pytest.raises(ValueError):
        percentile([1.0], q)
    with pytest.raises(ValueError):
        Histogram().percentile(q)


@pytest.mark.parametrize("value", [0.0, 0.05, 0.1, 0.11, 1.0, 3.3, 99.0, 1000.0, 65_000.0])
def test_a_bucket_holds_its_value_within_5_percent(value: float) -> None:
    index = bucket_of(value)
    assert value <= bucket_top_ms(index) + 1e-9
    if value > 0.1:
        assert bucket_top_ms(index) <= value * 1.05 + 1e-9


def test_histogram_percentiles_are_at_most_5_percent_high_and_never_past_the_max() -> None:
    rng = random.Random(5)
    values = [rng.lognormvariate(3, 1) for _ in range(5000)]
    h = Histogram()
    for v in values:
        h.add(v)
    for q in (50, 90, 99, 99.9, 100):
        exact = percentile(values, q)
        assert exact is not None
        got = h.percentile(q)
        assert got is not None and exact <= got <= exact * 1.05 + 1e-9
    assert h.percentile(100) == max(values) == h.max_ms


def test_histograms_merge_to_the_histogram_of_everything() -> None:
    a, b, both = Histogram(), Histogram(), Histogram()
    for k in range(1, 300):
        (a if k % 3 else b).add(k * 1.7)
        both.add(k * 1.7)
    a.merge(b)
    assert (a.counts, a.n, a.max_ms) == (both.counts, both.n, both.max_ms)
    assert Histogram().summary() == {
        "n": 0,
        "p50_ms": None,
        "p90_ms": None,
        "p99_ms": None,
        "max_ms": None,
    }


def test_a_second_sums_every_workers_tick() -> None:
    one, two = Tick(0, sockets=10, gifts_sent=5, cpu_s=0.5), Tick(1, sockets=7, gifts_sent=2)
    one.errors["rate_limited"] += 2
    two.errors["rate_limited"] += 1
    one.ack_ms.add(3.0)
    two.ack_ms.add(30.0)
    s = Second(4)
    s.add(one)
    s.add(two)
    row = s.row()
    assert row["t"] == 4 and row["sockets"] == 17 and row["gifts_sent"] == 7
    assert row["errors"] == 3 and row["client_cpu_cores"] == 0.5
    assert s.ack_ms.n == 2 and s.ack_ms.max_ms == 30.0


def test_two_ticks_of_one_worker_in_one_second_count_once_for_levels() -> None:
    s = Second(0)
    s.add(Tick(0, sockets=10, gifts_sent=3, cpu_s=0.4, wall_s=1.0))
    s.add(Tick(0, sockets=12, gifts_sent=4, cpu_s=0.2, wall_s=1.0))  # a late one
    s.add(Tick(1, sockets=5, cpu_s=0.5, wall_s=1.0))
    assert s.sockets == 12 + 5
    assert s.counts["gifts_sent"] == 7
    assert s.worker_cpu == {0: pytest.approx(0.3), 1: pytest.approx(0.5)}
