"""The scenario: every knob of a run, its default, its bounds, and how it is written down.

A scenario comes from the defaults, then a TOML file (`--scenario FILE`, flat `name = value`
lines), then the command line; each later source wins. `problems()` names every value out of
bounds, and `to_toml()` writes a file `load_toml()` reads back to the same scenario.
`check_target()` is the loopback guard: only 127.0.0.1, ::1 or localhost unless the operator
says `--allow-remote`.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class ScenarioError(ValueError):
    """A scenario file or value that cannot be used; the message says which and why."""


def knob(default: Any, low: float, high: float, doc: str) -> Any:
    return dataclasses.field(default=default, metadata={"low": low, "high": high, "doc": doc})


@dataclass(frozen=True, slots=True)
class Scenario:
    """One simulated platform. Counts are of simulated people; rates are per second."""

    duration_s: float = knob(60.0, 1, 3600, "seconds of gifting (the run's hard bound)")
    clients: int = knob(2000, 1, 50_000, "most WebSocket clients open at once (a hard cap)")
    workers: int = knob(2, 1, 32, "load-generating worker processes")
    rooms: int = knob(20, 1, 1000, "live rooms, each with its own host")
    zipf_s: float = knob(1.0, 0, 3, "Zipf exponent of room popularity (0: all rooms equal)")
    viewers: int = knob(300, 0, 50_000, "viewers watching at any time")
    sampled_fraction: float = knob(
        0.1, 0, 1, "share of viewers that parse every frame and check it (at least 1 a room)"
    )
    senders: int = knob(40, 0, 10_000, "viewers who also send gifts")
    overlays: int = knob(3, 0, 1000, "overlays, one on each of the biggest rooms")
    sender_pause_s: float = knob(2.0, 0.05, 600, "mean pause between a sender's gifts or streaks")
    streak_taps_max: int = knob(10, 1, 99, "most taps in one streak")
    tap_interval_ms: int = knob(250, 20, 3000, "time between taps of a streak")
    tap_share: float = knob(0.9, 0, 1, "share of sends that are 1-5 coin streak taps")
    large_share: float = knob(0.02, 0, 1, "share of sends that are large gifts (500+ coins)")
    large_gift_coins_max: int = knob(5000, 500, 1_000_000, "the dearest gift a sender sends")
    churn_per_min: float = knob(0.2, 0, 10, "share of plain viewers replaced by new sign-ups a min")
    drop_per_min: float = knob(0.1, 0, 10, "share of sockets dropped and resumed with since a min")
    gift_rate_per_s: float = knob(10.0, 0.1, 100_000, "each sender's own gift rate limit")
    gift_burst: int = knob(20, 1, 100_000, "each sender's burst (the contract: 10/s, burst 20)")
    seed: int = knob(1, 0, 2**31, "random seed: the same seed, the same plan")

    def problems(self) -> Iterator[str]:
        """Every value out of its bounds, and combinations that cannot run."""
        for f in fields(self):
            value = getattr(self, f.name)
            low, high = f.metadata["low"], f.metadata["high"]
            if isinstance(value, float) and not math.isfinite(value):
                yield f"{f.name} must be a finite number"
            elif not low <= value <= high:
                yield f"{f.name} must be {low:g}-{high:g}, got {value:g}"
        if self.senders > self.viewers:
            yield f"senders ({self.senders}) are viewers too: at most viewers ({self.viewers})"
        if self.overlays > self.rooms:
            yield f"overlays ({self.overlays}) must not outnumber rooms ({self.rooms})"
        if self.tap_share + self.large_share > 1:
            yield "tap_share + large_share must be at most 1 (the rest are medium gifts)"
        if self.sockets() > self.clients:
            yield (
                f"the scenario opens {self.sockets()} sockets (viewers + overlays); "
                f"--clients caps them at {self.clients}"
            )

    def sockets(self) -> int:
        return self.viewers + self.overlays

    def replace(self, **changes: Any) -> Scenario:
        return dataclasses.replace(self, **changes)

    def to_toml(self) -> str:
        """The scenario as a TOML file, one commented `name = value` line per knob."""
        lines = ["# giftcast loadtest scenario (giftcast loadtest --scenario FILE)", ""]
        for f in fields(self):
            lines.append(f"# {f.metadata['doc']} ({f.metadata['low']:g}-{f.metadata['high']:g})")
            value = getattr(self, f.name)
            lines.append(f"{f.name} = {value!r}")
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def knob_fields() -> tuple[dataclasses.Field[Any], ...]:
    return fields(Scenario)


def with_values(base: Scenario, values: Mapping[str, Any], source: str) -> Scenario:
    """`base` with `values` (names as in the dataclass) checked for name and type."""
    known = {f.name: f for f in fields(Scenario)}
    changes: dict[str, Any] = {}
    for name, value in values.items():
        f = known.get(name)
        if f is None:
            raise ScenarioError(f"{source}: unknown setting {name!r}")
        kind: type[Any] = type(f.default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(f"{source}: {name} must be a number, got {value!r}")
        if kind is int and not isinstance(value, int):
            raise ScenarioError(f"{source}: {name} must be a whole number, got {value!r}")
        changes[name] = kind(value)
    return base.replace(**changes)


def load_toml(text: str, source: str = "scenario", base: Scenario | None = None) -> Scenario:
    """A scenario from TOML text: flat `name = value` lines over `base` (the defaults)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from exc
    return with_values(base or Scenario(), doc, source)


def check_target(url: str, allow_remote: bool) -> str:
    """The base URL (`http://host:port`) of a target; non-loopback hosts need `allow_remote`."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ScenarioError(f"--url must look like http://127.0.0.1:8000, got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.username or parts.password:
        raise ScenarioError(f"--url takes a scheme, host and port only, got {url!r}")
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise ScenarioError(f"--url has a bad port: {url!r}") from exc
    if parts.hostname not in LOOPBACK_HOSTS and not allow_remote:
        raise ScenarioError(
            f"refusing {parts.hostname}: a load test only targets loopback "
            "(127.0.0.1, ::1, localhost) unless --allow-remote is given"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"http://{host}:{port}"
