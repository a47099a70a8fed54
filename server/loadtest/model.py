"""Pure rules of the simulated platform: who watches which room, which gift comes next, and
how fast a sender may send.

- `zipf_weights` / `apportion`: room popularity. Room 1 is the biggest; with exponent `s` a
  room of rank k draws a share proportional to 1 / k**s. `apportion` turns shares into whole
  counts that add up exactly (largest remainder), with a floor per room.
- `GiftMix.next_send`: mostly streak taps of a 1-5 coin streakable gift (count 1, several in
  a row), some medium gifts, a few large ones; drawn from the server's own catalog.
- `TokenBucket`: the sender's own limiter, so a default run stays inside the contract's
  10 gifts/s, burst 20, instead of drowning in `rate_limited`.

Time is a parameter (`now_s`) and randomness a `random.Random`: no clock, no I/O.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

TAP_COINS_MAX = 5
LARGE_COINS_MIN = 500


def zipf_weights(n: int, s: float) -> list[float]:
    """Shares of ranks 1..n, summing to 1: rank k gets (1/k**s) / H(n, s)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    if s < 0:
        raise ValueError("s must not be negative")
    raw = [1.0 / (k**s) for k in range(1, n + 1)]
    total = sum(raw)
    return [w / total for w in raw]


def apportion(total: int, weights: Sequence[float], floor: int = 0) -> list[int]:
    """Whole counts proportional to `weights` that sum to `total` (largest remainder), each at
    least `floor` while `total` allows it; earlier (bigger) ranks win ties."""
    if total < 0 or floor < 0:
        raise ValueError("total and floor must not be negative")
    n = len(weights)
    base = [min(floor, total // n)] * n if n else []
    left = total - sum(base)
    exact = [w * left for w in weights]
    counts = [b + int(e) for b, e in zip(base, exact, strict=True)]
    order = sorted(range(n), key=lambda i: (-(exact[i] - int(exact[i])), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


class Picker:
    """Draws ranks 0..n-1 with the given weights."""

    def __init__(self, weights: Sequence[float]) -> None:
        if not weights or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        self._cumulative = list(itertools.accumulate(weights))

    def pick(self, rng: random.Random) -> int:
        x = rng.random() * self._cumulative[-1]
        return min(bisect.bisect_right(self._cumulative, x), len(self._cumulative) - 1)


@dataclass(frozen=True, slots=True)
class CatalogGift:
    id: str
    coins: int
    streakable: bool


@dataclass(frozen=True, slots=True)
class Send:
    """What a sender does next: `taps` sends of `count` x `gift`, `tap_interval_ms` apart."""

    gift: CatalogGift
    count: int
    taps: int

    @property
    def coins(self) -> int:
        return self.gift.coins * self.count * self.taps


class GiftMix:
    """The mix of sends: taps (streakable, at most 5 coins), large (500 coins up to
    `large_coins_max`), medium (everything between); a class the catalog lacks is skipped."""

    def __init__(
        self,
        gifts: Iterable[CatalogGift],
        tap_share: float,
        large_share: float,
        taps_max: int,
        large_coins_max: int,
    ) -> None:
        allowed = [g for g in gifts if 0 < g.coins <= large_coins_max]
        self.taps = [g for g in allowed if g.streakable and g.coins <= TAP_COINS_MAX]
        self.large = [g for g in allowed if g.coins >= LARGE_COINS_MIN]
        self.medium = [g for g in allowed if g not in self.taps and g not in self.large]
        shares = [tap_share, max(0.0, 1 - tap_share - large_share), large_share]
        classes = [self.taps, self.medium, self.large]
        usable = [(s, c) for s, c in zip(shares, classes, strict=True) if c and s > 0]
        if not usable:
            raise ValueError("the catalog has no gift this mix can send")
        self._classes = [c for _, c in usable]
        self._picker = Picker([s for s, _ in usable])
        self.taps_max = taps_max

    def next_send(self, rng: random.Random) -> Send:
        chosen = self._classes[self._picker.pick(rng)]
        gift = rng.choice(chosen)
        if chosen is self.taps:
            # geometric-ish streak length: short streaks common, long ones rare
            taps = min(self.taps_max, 1 + int(rng.expovariate(1 / 3)))
            return Send(gift, 1, taps)
        return Send(gift, 1, 1)


def gifts_from_catalog(doc: Mapping[str, object]) -> list[CatalogGift]:
    """The `gifts` of `GET /api/catalog`."""
    found = doc.get("gifts")
    if not isinstance(found, list):
        raise ValueError("the catalog has no gifts list")
    out = []
    for g in found:
        if not isinstance(g, dict) or not isinstance(g.get("id"), str):
            raise ValueError(f"a catalog gift without an id: {g!r}")
        coins = g.get("coins")
        if not isinstance(coins, int) or isinstance(coins, bool):
            raise ValueError(f"a catalog gift without integer coins: {g!r}")
        out.append(CatalogGift(g["id"], coins, bool(g.get("streakable"))))
    return out


class TokenBucket:
    """`rate_per_s` tokens a second, at most `burst` saved up; `delay_s(now)` says how long to
    wait before the next send and takes its token."""

    def __init__(self, rate_per_s: float, burst: int, now_s: float) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = float(burst)
        self._at_s = now_s

    def delay_s(self, now_s: float) -> float:
        """Seconds until a token is free (0: send now); the token is taken either way."""
        elapsed = max(0.0, now_s - self._at_s)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate_per_s)
        self._at_s = now_s
        self._tokens -= 1
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.rate_per_s
