"""Timestamps: milliseconds since the epoch inside, RFC 3339 UTC strings on the wire."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache


def rfc3339(ms: int) -> str:
    """`1764000000123` -> `"2025-11-24T16:00:00.123Z"`."""
    seconds, millis = divmod(ms, 1000)
    return f"{_second(seconds)}.{millis:03d}Z"


@lru_cache(maxsize=64)
def _second(seconds: int) -> str:
    """The part up to the second: every event of the same second shares it (one per event was
    a tenth of the gift writer's Python time)."""
    return f"{dt.datetime.fromtimestamp(seconds, tz=dt.UTC):%Y-%m-%dT%H:%M:%S}"


def utc_date(ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ms // 1000, tz=dt.UTC).date()
