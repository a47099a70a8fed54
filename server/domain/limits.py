"""Self-set daily spending limits: a coin budget per calendar day, with a cooling-off period.

Lowering a limit applies at once; raising or removing it waits `cooling_off_ms` (24 h) and is
reported as pending until then. A day is a UTC calendar day unless the user set a time zone
(an IANA name such as "Europe/Berlin"); what was spent earlier that day counts.

A time zone change moves where the day ends, so it could free part of today's budget early:
while a limit is in force it waits the cooling-off period like a raise; with no limit in force
it applies at once. A pending change is the whole target (limit and zone): a new request
replaces it. Time is a parameter; nothing here reads a clock.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.domain.errors import Code, Refusal

DAY_MS = 86_400_000
# Spending is counted per quarter hour, so "today" can be summed in any time zone (every zone's
# offset is a whole number of quarter hours).
SPEND_QUARTER_MS = 900_000
COOLING_OFF_MS = DAY_MS
DAILY_COINS_MAX = 10**9
TIME_ZONE_CHARS_MAX = 64
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*")
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


class Keep:
    """`Limit.change`'s marker for "leave the time zone as last asked"."""


KEEP = Keep()


@dataclass(frozen=True, slots=True)
class Pending:
    daily_coins: int | None  # None: the limit will be removed
    effective_ms: int
    time_zone: str | None = None  # the zone days will be counted in then; None: UTC


@dataclass(frozen=True, slots=True)
class Limit:
    daily_coins: int | None = None  # None: no limit
    pending: Pending | None = None
    time_zone: str | None = None  # None: UTC days

    def at(self, now_ms: int) -> Limit:
        """The limit as it stands at `now_ms`: a pending change that came due is applied."""
        if self.pending is not None and self.pending.effective_ms <= now_ms:
            return Limit(self.pending.daily_coins, None, self.pending.time_zone)
        return self

    @property
    def wanted_time_zone(self) -> str | None:
        """The zone last asked for: the pending one if a change is pending."""
        return self.pending.time_zone if self.pending is not None else self.time_zone

    def change(
        self,
        requested: int | None,
        now_ms: int,
        cooling_off_ms: int = COOLING_OFF_MS,
        time_zone: str | Keep | None = KEEP,
    ) -> Limit:
        """A request to set the daily limit to `requested` (None: remove it), and the time zone
        to `time_zone` (None: UTC; `KEEP`: the one last asked for)."""
        current = self.at(now_ms)
        zone = current.wanted_time_zone if isinstance(time_zone, Keep) else time_zone
        pending = current.pending
        if pending is not None and (requested, zone) == (pending.daily_coins, pending.time_zone):
            return current  # asking again for what is pending does not restart the wait
        tighter = requested is not None and (
            current.daily_coins is None or requested < current.daily_coins
        )
        # lowering applies at once; a zone too, unless a limit is in force (its day would move)
        daily_now = requested if tighter else current.daily_coins
        zone_now = zone if current.daily_coins is None else current.time_zone
        if (daily_now, zone_now) == (requested, zone):
            return Limit(daily_now, None, zone_now)  # all applied: no change due (cancels one)
        return Limit(daily_now, Pending(requested, now_ms + cooling_off_ms, zone), zone_now)


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def day_of(now_ms: int, time_zone: str | None = None) -> int:
    """The calendar day at `now_ms` in `time_zone` (None: UTC), as days since 1970-01-01."""
    if time_zone is None:
        return now_ms // DAY_MS
    local = dt.datetime.fromtimestamp(now_ms / 1000, _zone(time_zone))
    return local.date().toordinal() - _EPOCH_ORDINAL


def day_start_ms(day: int, time_zone: str | None = None) -> int:
    """When `day` (days since 1970-01-01) begins in `time_zone`, as ms since the epoch."""
    if time_zone is None:
        return day * DAY_MS
    date = dt.date.fromordinal(day + _EPOCH_ORDINAL)
    start = dt.datetime.combine(date, dt.time(), _zone(time_zone))
    return int(start.timestamp() * 1000)


def check_time_zone(value: object) -> str | Keep | Refusal | None:
    """The requested zone (None: UTC), `KEEP` as given, or why it is not a zone."""
    if value is None:
        return None
    if isinstance(value, Keep):
        return value
    message = 'time_zone must be an IANA time zone name such as "Europe/Berlin", or null for UTC'
    if (
        not isinstance(value, str)
        or len(value) > TIME_ZONE_CHARS_MAX
        or not _ZONE_NAME.fullmatch(value)
    ):
        return Refusal(Code.INVALID, message)
    try:
        _zone(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return Refusal(Code.INVALID, f"{message}; {value!r} is not one")
    return None if value in ("UTC", "Etc/UTC") else value


def left_today(limit: int | None, spent_today: int) -> int | None:
    """Coins that may still be spent today; None when there is no limit."""
    if limit is None:
        return None
    return max(0, limit - spent_today)


def check_daily_coins(value: object) -> int | str | None:
    """The requested limit, or why it is not one (an error message)."""
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= DAILY_COINS_MAX:
        return f"daily_coins must be null (no limit) or an integer 0-{DAILY_COINS_MAX}"
    return value
