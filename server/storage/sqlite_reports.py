"""Read-only reports on SQLite: a user's statement for a period, a creator's earnings, a
room's gift transfers.

Both read through the store's reader connection (WAL: they never see an uncommitted write),
bounded by a row limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from server.domain.ledger import SystemAccount, coin_account, diamond_account
from server.domain.money import RoomId, TransferId, UserId
from server.storage.base import EarningsRow, RoomGiftRow, StatementLine

Read = Callable[[str, Sequence[Any]], Awaitable[list[Any]]]


async def opening_balances(read: Read, user: UserId, before_ms: int) -> tuple[int, int]:
    """(coins, diamonds) just before `before_ms`, from the last entry on each account."""
    found: list[int] = []
    for account in (coin_account(user), diamond_account(user)):
        rows = await read(
            "SELECT e.balance_after FROM entries e JOIN transfers t ON t.id = e.transfer_id"
            " WHERE e.account_id = ? AND t.at_ms < ? ORDER BY e.transfer_id DESC LIMIT 1",
            (account, before_ms),
        )
        found.append(int(rows[0][0]) if rows and rows[0][0] is not None else 0)
    return found[0], found[1]


async def statement_lines(
    read: Read, user: UserId, from_ms: int, to_ms: int, limit: int
) -> list[StatementLine]:
    """Every entry on the user's two accounts in [from_ms, to_ms), oldest first."""
    coin, diamond = coin_account(user), diamond_account(user)
    rows = await read(
        "SELECT t.id, t.kind, t.at_ms, e.account_id, e.amount, e.balance_after, t.user_id,"
        " t.counterparty_id, t.room_id, t.gift_id, t.count, t.package_id, t.price_cents,"
        " t.currency, t.refund_of, t.payout_id, u.name, h.name, t.cost_millicents,"
        " CASE WHEN t.kind = 'gift' THEN (SELECT -x.amount FROM entries x"
        " WHERE x.account_id = ? AND x.transfer_id = t.id) END"
        " FROM entries e JOIN transfers t ON t.id = e.transfer_id"
        " LEFT JOIN users u ON u.id = t.user_id LEFT JOIN users h ON h.id = t.counterparty_id"
        " WHERE e.account_id IN (?, ?) AND t.at_ms >= ? AND t.at_ms < ?"
        " ORDER BY e.transfer_id, e.account_id LIMIT ?",
        (SystemAccount.DIAMONDS_ISSUED, coin, diamond, from_ms, to_ms, limit),
    )
    lines = []
    for r in rows:
        is_coin = r[3] == coin
        kind = r[1]
        if kind == "gift":
            kind = "gift_sent" if is_coin else "gift_received"
        lines.append(
            StatementLine(
                transfer=r[0],
                kind=kind,
                at_ms=r[2],
                coins=r[4] if is_coin else 0,
                diamonds=0 if is_coin else r[4],
                balance_after=r[5],
                room=r[8],
                gift_id=r[9],
                count=r[10],
                package_id=r[11],
                price_cents=r[12],
                currency=r[13],
                refund_of=r[14],
                payout=r[15],
                other=(r[17] if is_coin else r[16]) if r[1] == "gift" else None,
                cost_millicents=r[18],
                gift_diamonds=r[19],
            )
        )
    return lines


async def earnings(
    read: Read, user: UserId, from_ms: int, to_ms: int, limit: int
) -> list[EarningsRow]:
    """Diamonds received as gifts in [from_ms, to_ms), per UTC day and live."""
    rows = await read(
        "SELECT t.at_ms / 86400000, t.room_id, r.title, r.started_ms, sum(e.amount), count(*)"
        " FROM entries e JOIN transfers t ON t.id = e.transfer_id"
        " LEFT JOIN rooms r ON r.id = t.room_id"
        " WHERE e.account_id = ? AND t.kind = 'gift' AND t.at_ms >= ? AND t.at_ms < ?"
        " GROUP BY 1, 2 ORDER BY 1, 2 LIMIT ?",
        (diamond_account(user), from_ms, to_ms, limit),
    )
    return [EarningsRow(r[0], r[1], r[2] or "", r[3] or 0, int(r[4]), int(r[5])) for r in rows]


async def room_gifts(
    read: Read, room: RoomId, host: UserId, after: int, limit: int
) -> list[RoomGiftRow]:
    """The room's gift transfers past `after`, by the host's diamond entries (a primary-key
    range), each with the sender's coin entry and the request id that points at it."""
    rows = await read(
        "SELECT t.id, t.at_ms, t.user_id, coalesce(u.name, ''), g.request_id, g.seq,"
        " t.gift_id, t.count, coalesce(-s.amount, 0), d.amount"
        " FROM entries d JOIN transfers t ON t.id = d.transfer_id"
        # 2 * user + 100 is `coin_account(user)`: the sender's leg of the gift
        " LEFT JOIN entries s ON s.account_id = 2 * t.user_id + 100 AND s.transfer_id = t.id"
        " LEFT JOIN gift_requests g ON g.sender_id = t.user_id AND g.transfer_id = t.id"
        " LEFT JOIN users u ON u.id = t.user_id"
        " WHERE d.account_id = ? AND d.transfer_id > ? AND t.kind = 'gift' AND t.room_id = ?"
        " ORDER BY d.transfer_id LIMIT ?",
        (diamond_account(host), after, room, limit),
    )
    return [
        RoomGiftRow(
            transfer=TransferId(r[0]),
            at_ms=r[1],
            sender=UserId(r[2]),
            sender_name=r[3],
            request_id=r[4],
            seq=r[5],
            gift_id=r[6] or "",
            count=r[7] or 0,
            coins=int(r[8]),
            diamonds=int(r[9]),
        )
        for r in rows
    ]
