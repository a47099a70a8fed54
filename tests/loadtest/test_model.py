"""The simulated platform's pure rules: Zipf shares and counts, the gift mix, the limiter."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from server.loadtest.model import (
    CatalogGift,
    GiftMix,
    Picker,
    TokenBucket,
    apportion,
    gifts_from_catalog,
    zipf_weights,
)


@pytest.mark.parametrize(
    ("n", "s", "expected"),
    [
        (1, 1.0, [1.0]),
        (3, 0.0, [1 / 3, 1 / 3, 1 / 3]),
        (3, 1.0, [6 / 11, 3 / 11, 2 / 11]),  # 1, 1/2, 1/3 over H(3) = 11/6
        (2, 2.0, [0.8, 0.2]),  # 1, 1/4 over 5/4
    ],
)
def test_zipf_weights(n: int, s: float, expected: list[float]) -> None:
    assert zipf_weights(n, s) == pytest.approx(expected)


@pytest.mark.parametrize(("n", "s"), [(0, 1.0), (3, -0.5)])
def test_zipf_weights_refuse_nonsense(n: int, s: float) -> None:
    with pytest.raises(ValueError):
        zipf_weights(n, s)


@pytest.mark.parametrize(
    ("total", "weights", "floor", "expected"),
    [
        (10, [0.5, 0.3, 0.2], 0, [5, 3, 2]),
        (11, [6 / 11, 3 / 11, 2 / 11], 0, [6, 3, 2]),
        (7, [0.5, 0.5], 0, [4, 3]),  # a tie goes to the bigger rank
        (3, [0.98, 0.01, 0.01], 1, [1, 1, 1]),  # the floor first
        (2, [0.98, 0.01, 0.01], 1, [2, 0, 0]),  # too few for the floor: none
        (0, [0.5, 0.5], 1, [0, 0]),
        (300, zipf_weights(20, 1.0), 1, None),
    ],
)
def test_apportion_adds_up_exactly(
    total: int, weights: list[float], floor: int, expected: list[int] | None
) -> None:
    counts = apportion(total, weights, floor)
    assert sum(counts) == total
    if expected is not None:
        assert counts == expected
    else:
        assert counts == sorted(counts, reverse=True) and min(counts) >= floor


def test_picker_follows_the_weights() -> None:
    rng = random.Random(7)
    picker = Picker(zipf_weights(4, 1.0))
    drawn = Counter(picker.pick(rng) for _ in range(20_000))
    shares = [drawn[k] / 20_000 for k in range(4)]
    assert shares == pytest.approx(zipf_weights(4, 1.0), abs=0.02)


@pytest.mark.parametrize("weights", [[], [0.0, 0.0], [1.0, -1.0]])
def test_picker_refuses_bad_weights(weights: list[float]) -> None:
    with pytest.raises(ValueError):
        Picker(weights)


CATALOG = [
    CatalogGift("rose", 1, True),
    CatalogGift("finger_heart", 5, True),
    CatalogGift("perfume", 20, True),
    CatalogGift("corgi", 299, False),
    CatalogGift("galaxy", 1000, False),
    CatalogGift("universe", 34999, False),
]


def test_the_mix_is_mostly_small_streak_taps_and_a_few_large_gifts() -> None:
    mix = GiftMix(CATALOG, tap_share=0.9, large_share=0.02, taps_max=10, large_coins_max=5000)
    assert [g.id for g in mix.taps] == ["rose", "finger_heart"]
    assert [g.id for g in mix.medium] == ["perfume", "corgi"]
    assert [g.id for g in mix.large] == ["galaxy"]  # universe is over the cap
    rng = random.Random(3)
    sends = [mix.next_send(rng) for _ in range(10_000)]
    kinds = Counter(
        "tap" if s.gift in mix.taps else "large" if s.gift in mix.large else "medium" for s in sends
    )
    assert kinds["tap"] / 10_000 == pytest.approx(0.9, abs=0.02)
    assert kinds["large"] / 10_000 == pytest.approx(0.02, abs=0.01)
    assert all(s.count == 1 and 1 <= s.taps <= 10 for s in sends)
    assert all(s.taps == 1 for s in sends if s.gift not in mix.taps)
    assert max(s.taps for s in sends) == 10 and min(s.taps for s in sends) == 1
    assert all(s.gift.coins <= 5000 for s in sends)


def test_a_class_the_catalog_lacks_is_skipped() -> None:
    mix = GiftMix(CATALOG[:2], tap_share=0.5, large_share=0.5, taps_max=3, large_coins_max=5000)
    rng = random.Random(1)
    assert all(mix.next_send(rng).gift.coins <= 5 for _ in range(200))
    with pytest.raises(ValueError):
        GiftMix(CATALOG[3:4], tap_share=1.0, large_share=0.0, taps_max=3, large_coins_max=5000)


def test_gifts_from_catalog_reads_the_http_answer_and_refuses_junk() -> None:
    doc = {"gifts": [{"id": "rose", "coins": 1, "streakable": True}]}
    assert gifts_from_catalog(doc) == [CatalogGift("rose", 1, True)]
    for junk in ({}, {"gifts": [{"coins": 1}]}, {"gifts": [{"id": "x", "coins": "1"}]}):
        with pytest.raises(ValueError):
            gifts_from_catalog(junk)


@pytest.mark.parametrize(
    ("sends_at", "delays"),
    [
        # the contract: 10/s, burst 20: twenty at once pass, the 21st waits 0.1 s
        ([0.0] * 21, [0.0] * 20 + [pytest.approx(0.1)]),
        # a second later ten more tokens have come back
        ([0.0] * 20 + [1.0] * 11, [0.0] * 30 + [pytest.approx(0.1)]),
        # steady 10/s never waits
        ([k / 10 for k in range(100)], [0.0] * 100),
    ],
)
def test_the_token_bucket_keeps_to_10_per_s_burst_20(
    sends_at: list[float], delays: list[object]
) -> None:
    bucket = TokenBucket(10, 20, 0.0)
    assert [bucket.delay_s(t) for t in sends_at] == delays


def test_the_token_bucket_queues_waits() -> None:
    bucket = TokenBucket(10, 1, 0.0)
    assert [bucket.delay_s(0.0) for _ in range(4)] == pytest.approx([0.0, 0.1, 0.2, 0.3])
