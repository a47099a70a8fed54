"""Figures: latency histograms, percentiles, and what every worker reports each second.

`Histogram` keeps latencies in geometric buckets 5% wide (0.1 ms to about 20 minutes), so
a second's worth from every worker merges exactly and costs the same however many gifts
there were; a percentile is the upper edge of its bucket (at most 5% high), never above the
largest value seen. `percentile` is the exact nearest-rank percentile of a list, for tests
and small samples. `Tick` is one worker's second; `Second` is the run's second (all workers).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

BUCKET_BASE_MS = 0.1
BUCKET_GROWTH = 1.05
BUCKETS_MAX = 330  # 0.1 ms * 1.05**330 is about 20 minutes: anything slower shares the top


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile `q` (0-100] of `values`; None when there are none."""
    if not 0 < q <= 100:
        raise ValueError("q must be in (0, 100]")
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(round(q * len(ordered) / 100, 9)))  # 99.9% of 1000 is 999
    return ordered[rank - 1]


def bucket_of(value_ms: float) -> int:
    if value_ms <= BUCKET_BASE_MS:
        return 0
    return min(BUCKETS_MAX, math.ceil(math.log(value_ms / BUCKET_BASE_MS, BUCKET_GROWTH) - 1e-9))


def bucket_top_ms(index: int) -> float:
    return BUCKET_BASE_MS * BUCKET_GROWTH**index


@dataclass(slots=True)
class Histogram:
    counts: dict[int, int] = field(default_factory=dict)
    n: int = 0
    max_ms: float = 0.0

    def add(self, value_ms: float) -> None:
        value_ms = max(0.0, value_ms)
        index = bucket_of(value_ms)
        self.counts[index] = self.counts.get(index, 0) + 1
        self.n += 1
        self.max_ms = max(self.max_ms, value_ms)

    def merge(self, other: Histogram) -> None:
        for index, count in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + count
        self.n += other.n
        self.max_ms = max(self.max_ms, other.max_ms)

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile `q`, to the upper edge of its bucket (capped at the max)."""
        if not 0 < q <= 100:
            raise ValueError("q must be in (0, 100]")
        if self.n == 0:
            return None
        rank = max(1, math.ceil(round(q * self.n / 100, 9)))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return min(bucket_top_ms(index), self.max_ms)
        return self.max_ms  # pragma: no cover - the counts add up to n

    def summary(self) -> dict[str, float | int | None]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 2)

        return {
            "n": self.n,
            "p50_ms": r(self.percentile(50)),
            "p90_ms": r(self.percentile(90)),
            "p99_ms": r(self.percentile(99)),
            "max_ms": r(self.max_ms) if self.n else None,
        }


@dataclass(slots=True)
class Tick:
    """One worker's figures for one second (counts are deltas, `sockets` a level)."""

    worker: int
    sockets: int = 0
    gifts_sent: int = 0
    gifts_acked: int = 0
    events: int = 0  # room events delivered to clients (every client counts them)
    frames: int = 0
    reconnects: int = 0
    signups: int = 0
    recharges: int = 0
    cpu_s: float = 0.0  # the worker's own CPU time in this second
    wall_s: float = 1.0
    errors: Counter[str] = field(default_factory=Counter)
    ack_ms: Histogram = field(default_factory=Histogram)
    delivery_ms: Histogram = field(default_factory=Histogram)


COUNTERS = ("gifts_sent", "gifts_acked", "events", "frames", "reconnects", "signups", "recharges")


@dataclass(slots=True)
class Second:
    """The whole run's figures for one second: the sum of every worker's tick."""

    t: int  # seconds since gifting started (negative: set-up, ramping)
    sockets: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    ack_ms: Histogram = field(default_factory=Histogram)
    delivery_ms: Histogram = field(default_factory=Histogram)
    worker_cpu: dict[int, float] = field(default_factory=dict)  # cores used, per worker
    server_cpu: float | None = None  # cores, when we know the server's pid
    latest_sockets: dict[int, int] = field(default_factory=dict)

    cpu_wall: dict[int, tuple[float, float]] = field(default_factory=dict)  # worker -> sums

    def add(self, tick: Tick) -> None:
        """Add a worker's tick; a late tick can make two of one worker land in one second:
        counts add up, the socket level is the latest, CPU is CPU time over wall time."""
        self.latest_sockets[tick.worker] = tick.sockets
        self.sockets = sum(self.latest_sockets.values())
        for name in COUNTERS:
            self.counts[name] += getattr(tick, name)
        self.errors.update(tick.errors)
        self.ack_ms.merge(tick.ack_ms)
        self.delivery_ms.merge(tick.delivery_ms)
        cpu, wall = self.cpu_wall.get(tick.worker, (0.0, 0.0))
        cpu, wall = cpu + tick.cpu_s, wall + tick.wall_s
        self.cpu_wall[tick.worker] = (cpu, wall)
        self.worker_cpu[tick.worker] = cpu / wall if wall > 0 else 0.0

    def row(self) -> dict[str, object]:
        """This second as a flat row for the reports."""
        return {
            "t": self.t,
            "sockets": self.sockets,
            **{name: self.counts[name] for name in COUNTERS},
            "errors": sum(self.errors.values()),
            "ack_p50_ms": _round(self.ack_ms.percentile(50)),
            "ack_p99_ms": _round(self.ack_ms.percentile(99)),
            "delivery_p50_ms": _round(self.delivery_ms.percentile(50)),
            "delivery_p99_ms": _round(self.delivery_ms.percentile(99)),
            "client_cpu_cores": round(sum(self.worker_cpu.values()), 3),
            "client_cpu_max_worker": round(max(self.worker_cpu.values(), default=0.0), 3),
            "server_cpu_cores": None if self.server_cpu is None else round(self.server_cpu, 3),
        }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def merged(hists: Iterable[Histogram]) -> Histogram:
    out = Histogram()
    for h in hists:
        out.merge(h)
    return out
