"""Statements, earnings and a room's gifts: what the ledger says, for a spreadsheet, a tax
return, or an operator checking a load test.

`statement_csv` lists every ledger entry of the caller in a UTC calendar month, oldest first,
with running balances of both accounts. `earnings` sums a creator's diamonds from gifts by
UTC day and by live, with their cash value at `cents_per_100_diamonds` (whole cents, rounded
down per line: the diamonds themselves are exact).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any

from server.config import Settings
from server.domain.errors import Code, Refusal
from server.domain.limits import DAY_MS
from server.domain.money import Rates, RoomId
from server.domain.pricing import gift_value
from server.domain.timefmt import rfc3339, utc_date
from server.services.clock import Clock
from server.services.users import Caller
from server.storage.base import LedgerStore, RoomGiftRow, StatementLine

# ASCII digits only: `\d` also matches other scripts' digits, which `int()` reads.
MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
STATEMENT_ROWS_MAX = 200_000
EARNINGS_DAYS_MAX = 366
COLUMNS = (
    "date",
    "transaction_id",
    "kind",
    "description",
    "coins",
    "diamonds",
    "coins_balance",
    "diamonds_balance",
    "cash_cents",
    "currency",
    # gifts, in millicents (1/1000 cent): what the viewer's coins cost, what the host's
    # diamonds are worth, and the difference the platform kept
    "paid_millicents",
    "host_millicents",
    "platform_millicents",
)


def _ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 1000


def _describe(line: StatementLine) -> str:
    times = f" x{line.count}" if line.count and line.count > 1 else ""
    if line.kind == "recharge":
        return f"bought coins ({line.package_id})"
    if line.kind == "gift_sent":
        return f"sent {line.gift_id}{times} to {line.other} in room {line.room}"
    if line.kind == "gift_received":
        return f"received {line.gift_id}{times} from {line.other} in room {line.room}"
    if line.kind == "refund":
        return f"refund of purchase {line.refund_of}"
    if line.kind == "payout":
        return f"payout {line.payout} requested (diamonds reserved)"
    if line.kind == "payout_reversed":
        return f"payout {line.payout} failed (diamonds returned)"
    return line.kind


class ReportService:
    def __init__(self, settings: Settings, store: LedgerStore, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.rates = Rates(settings.diamonds_per_coin, settings.cents_per_100_diamonds)

    async def statement_csv(self, caller: Caller, month: str | None) -> bytes | Refusal:
        found = MONTH.fullmatch(month or "")
        if found is None or not 2000 <= int(found[1]) <= 2999 or not 1 <= int(found[2]) <= 12:
            return Refusal(Code.INVALID, "month must be written YYYY-MM, e.g. ?month=2026-11")
        year, number = int(found[1]), int(found[2])
        start = dt.date(year, number, 1)
        end = dt.date(year + number // 12, number % 12 + 1, 1)
        from_ms, to_ms = _ms(start), _ms(end)
        coins, diamonds = await self.store.opening_balances(caller.id, from_ms)
        lines = await self.store.statement(caller.id, from_ms, to_ms, STATEMENT_ROWS_MAX)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for line in lines:
            if line.coins:
                coins = line.balance_after if line.balance_after is not None else coins + line.coins
            if line.diamonds:
                diamonds = (
                    line.balance_after
                    if line.balance_after is not None
                    else diamonds + line.diamonds
                )
            cash: int | str = ""
            if line.kind == "recharge" and line.price_cents is not None:
                cash = line.price_cents
            elif line.kind == "refund" and line.price_cents is not None:
                cash = -line.price_cents
            elif line.diamonds:
                value = self.rates.cents_for_diamonds(abs(line.diamonds))
                cash = value if line.diamonds > 0 else -value
            writer.writerow(
                (
                    rfc3339(line.at_ms),
                    line.transfer,
                    line.kind,
                    _describe(line),
                    line.coins,
                    line.diamonds,
                    coins,
                    diamonds,
                    cash,
                    line.currency or "USD",
                    *self._value(line),
                )
            )
        return out.getvalue().encode()

    def _value(self, line: StatementLine) -> tuple[int | str, ...]:
        if line.cost_millicents is None or line.gift_diamonds is None:
            return ("", "", "")
        value = gift_value(line.cost_millicents, line.gift_diamonds, self.rates)
        return (value.paid_millicents, value.host_millicents, value.platform_millicents)

    async def earnings(
        self, caller: Caller, first: str | None, last: str | None
    ) -> dict[str, Any] | Refusal:
        today = utc_date(self.clock())
        days: list[dt.date | None] = []
        for value in (first, last):
            if not value:
                days.append(None)
                continue
            if not DAY.fullmatch(value):
                return Refusal(Code.INVALID, "from and to must be dates written YYYY-MM-DD")
            try:
                days.append(dt.date.fromisoformat(value))
            except ValueError:
                return Refusal(Code.INVALID, f"{value} is not a real date")
        last_day = days[1] or today
        # The default range is the 30 days up to `last_day`, cut at the calendar's first day.
        first_day = days[0] or dt.date.fromordinal(max(1, last_day.toordinal() - 29))
        if first_day > last_day or (last_day - first_day).days >= EARNINGS_DAYS_MAX:
            return Refusal(
                Code.INVALID, f"from must not be after to, and at most {EARNINGS_DAYS_MAX} days"
            )
        from_ms, to_ms = _ms(first_day), _ms(last_day) + DAY_MS
        rows = await self.store.earnings(caller.id, from_ms, to_ms, 100_000)
        by_day: dict[int, list[int]] = {}
        by_live: dict[int, dict[str, Any]] = {}
        for row in rows:
            day = by_day.setdefault(row.day, [0, 0])
            day[0] += row.diamonds
            day[1] += row.gifts
            live = by_live.setdefault(
                row.room,
                {
                    "room": {
                        "id": row.room,
                        "title": row.title,
                        "started_at": rfc3339(row.started_ms),
                    },
                    "diamonds": 0,
                    "gifts": 0,
                },
            )
            live["diamonds"] += row.diamonds
            live["gifts"] += row.gifts
        cents = self.rates.cents_for_diamonds
        total = sum(d for d, _ in by_day.values())
        return {
            "from": first_day.isoformat(),
            "to": last_day.isoformat(),
            "diamonds": total,
            "cents": cents(total),
            "cents_per_100_diamonds": self.rates.cents_per_100_diamonds,
            "by_day": [
                {
                    "day": (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat(),
                    "diamonds": d,
                    "cents": cents(d),
                    "gifts": g,
                }
                for day, (d, g) in sorted(by_day.items())
            ],
            "by_live": [
                {**live, "cents": cents(live["diamonds"])} for _, live in sorted(by_live.items())
            ],
        }

    async def room_gifts(self, room: RoomId, after: int, limit: int) -> dict[str, Any] | Refusal:
        """A page of the room's gift transfers past transfer id `after`, oldest first;
        `next` is the cursor for the following page, None on the last one."""
        found = await self.store.get_room(room)
        if found is None:
            return Refusal(Code.NOT_FOUND, "there is no such room")
        rows = await self.store.room_gifts(room, found.host, after, limit)
        return {
            "room": room,
            "host": {"id": found.host, "name": found.host_name},
            "items": [_room_gift(row) for row in rows],
            "next": rows[-1].transfer if len(rows) == limit else None,
        }


def _room_gift(row: RoomGiftRow) -> dict[str, Any]:
    return {
        "transfer": row.transfer,
        "at": rfc3339(row.at_ms),
        "sender": {"id": row.sender, "name": row.sender_name},
        "request_id": row.request_id,
        "seq": row.seq,
        "gift_id": row.gift_id,
        "count": row.count,
        "coins": row.coins,
        "diamonds": row.diamonds,
    }
