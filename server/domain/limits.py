"""Self-set daily spending limits: a coin budget per UTC day, with a cooling-off period.

Lowering a limit applies at once; raising or removing it waits `cooling_off_ms` (24 h) and is
reported as pending until then. A day is a UTC calendar day, and what was spent earlier that
day counts. Time is a parameter; nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 86_400_000
COOLING_OFF_MS = DAY_MS
DAILY_COINS_MAX = 10**9


@dataclass(frozen=True, slots=True)
class Pending:
    daily_coins: int | None  # None: the limit will be removed
    effective_ms: int


@dataclass(frozen=True, slots=True)
class Limit:
    daily_coins: int | None = None  # None: no limit
    pending: Pending | None = None

    def at(self, now_ms: int) -> Limit:
        """The limit as it stands at `now_ms`: a pending change that came due is applied."""
        if self.pending is not None and self.pending.effective_ms <= now_ms:
            return Limit(self.pending.daily_coins, None)
        return self

    def change(
        self, requested: int | None, now_ms: int, cooling_off_ms: int = COOLING_OFF_MS
    ) -> Limit:
        """A request to set the daily limit to `requested` (None: remove it)."""
        current = self.at(now_ms)
        tighter = requested is not None and (
            current.daily_coins is None or requested < current.daily_coins
        )
        if tighter:
            return Limit(requested, None)  # lowering applies at once, and cancels a raise
        if requested == current.daily_coins:
            return Limit(current.daily_coins, None)  # asking for what is in force: no change due
        return Limit(current.daily_coins, Pending(requested, now_ms + cooling_off_ms))


def day_of(now_ms: int) -> int:
    """The UTC calendar day, as days since 1970-01-01."""
    return now_ms // DAY_MS


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
