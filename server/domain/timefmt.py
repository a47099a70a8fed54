"""Timestamps: milliseconds since the epoch inside, RFC 3339 UTC strings on the wire."""

from __future__ import annotations

import datetime as dt


def rfc3339(ms: int) -> str:
    """`1764000000123` -> `"2025-11-24T16:00:00.123Z"`."""
    seconds, millis = divmod(ms, 1000)
    stamp = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    return f"{stamp:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def utc_date(ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ms // 1000, tz=dt.UTC).date()
