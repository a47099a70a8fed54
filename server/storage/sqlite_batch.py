"""One group commit on SQLite: every command of a batch inside one transaction.

Runs on the writer thread inside `BEGIN IMMEDIATE` (see `sqlite.SqliteStore._tx`), so it is
the only writer while it runs: what it reads cannot change under it. So it issues no statement
per gift; everything is read once and written once per batch:

- duplicate request ids are looked up for the whole batch in one query;
- the balances of the batch's senders and hosts are read in one query; each gift is checked
  against its sender's running balance, in command order (a sender's second gift in a batch
  sees the first one's debit), and refused `insufficient_coins` when it does not fit;
- each changed balance is written once, as a compare-and-set on the balance that was read
  (`... WHERE id = ? AND balance = ?`): a row changed by anything else fails the whole batch,
  and the schema's `CHECK (balance >= 0)` still guards every user account;
- transfer ids are assigned here (transfers are append-only, so max(id) + 1 onwards is free);
- each leg's balance-after is the running balance of its account within the batch;
- system accounts are settled once per batch; transfers, entries, requests, room events,
  balances and rooms in multi-row statements (`sqlite_rows.py`): `executemany` steps, and so
  gives the GIL back and waits for it again, once per row.

(Once a statement per gift, the guarded `UPDATE ... WHERE balance >= ?`: 500 statements a
batch, each giving the GIL back and waiting for it again while the event loop was busy.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from server.domain.errors import Code, Refusal
from server.domain.ledger import SystemAccount, coin_account, diamond_account, gift_legs
from server.domain.limits import (
    SPEND_QUARTER_MS,
    Limit,
    Pending,
    day_of,
    day_start_ms,
    left_today,
)
from server.domain.money import RoomId
from server.domain.pricing import cost_leaving
from server.domain.rooms import EventKind, RoomEvent, RoomStatus
from server.storage.base import (
    BatchPlanner,
    BatchResult,
    Command,
    GiftAccepted,
    GiftCommand,
    GiftOk,
    GiftRefused,
    RoomAction,
    RoomCommand,
    RoomDone,
)
from server.storage.sqlite_costs import bases, store_bases
from server.storage.sqlite_rows import insert_rows, update_rows


def add(conn: sqlite3.Connection, account: int, amount: int) -> int:
    row = conn.execute(
        "UPDATE accounts SET balance = balance + ? WHERE id = ? RETURNING balance",
        (amount, account),
    ).fetchone()
    if row is None:
        raise RuntimeError(f"account {account} does not exist")
    return int(row[0])


def _balances(conn: sqlite3.Connection, accounts: set[int]) -> dict[int, int]:
    """The balances of `accounts`, read once (missing accounts are left out)."""
    wanted = list(accounts)
    found: dict[int, int] = {}
    for start in range(0, len(wanted), 400):
        chunk = wanted[start : start + 400]
        marks = ",".join("?" * len(chunk))
        found.update(conn.execute(f"SELECT id, balance FROM accounts WHERE id IN ({marks})", chunk))
    return found


def _store_balances(conn: sqlite3.Connection, read: dict[int, int], now: dict[int, int]) -> None:
    """Write the balances that changed, each only if it is still what was read."""
    changed = [(a, now[a], read[a]) for a in now if now[a] != read[a]]
    written = update_rows(
        conn,
        "UPDATE accounts SET balance = v.column2 FROM {values}"
        " WHERE accounts.id = v.column1 AND accounts.balance = v.column3",
        changed,
    )
    if written != len(changed):
        raise RuntimeError(f"balances changed under the batch: {written} of {len(changed)} written")


def _known_requests(
    conn: sqlite3.Connection, commands: Sequence[Command]
) -> dict[tuple[int, str], GiftOk]:
    """Earlier accepted ids among the batch's gifts: point lookups on the primary key, joined
    with UNION ALL (a row-value IN over VALUES makes SQLite scan the table)."""
    keys = list({(c.sender, c.request_id) for c in commands if isinstance(c, GiftCommand)})
    found: dict[tuple[int, str], GiftOk] = {}
    lookup = (
        "SELECT g.sender_id, g.request_id, g.seq, g.coins_after, g.coins_spent, g.diamonds,"
        " t.cost_millicents FROM gift_requests g JOIN transfers t ON t.id = g.transfer_id"
        " WHERE g.sender_id = ? AND g.request_id = ?"
    )
    for start in range(0, len(keys), 200):  # SQLite allows 500 terms in a compound SELECT
        chunk = keys[start : start + 200]
        sql = " UNION ALL ".join([lookup] * len(chunk))
        params = [value for key in chunk for value in key]
        for sender, request_id, *ok in conn.execute(sql, params):
            found[(sender, request_id)] = GiftOk(*ok)
    return found


def _limits(conn: sqlite3.Connection, commands: Sequence[Command]) -> dict[int, Limit]:
    senders = list({c.sender for c in commands if isinstance(c, GiftCommand)})
    found: dict[int, Limit] = {}
    for start in range(0, len(senders), 400):
        chunk = senders[start : start + 400]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT user_id, {LIMIT_COLUMNS} FROM spending_limits WHERE user_id IN ({marks})",
            chunk,
        ):
            found[row[0]] = limit_from_row(row[1:])
    return found


LIMIT_COLUMNS = (
    "daily_coins, pending_set, pending_daily_coins, pending_effective_ms, time_zone,"
    " pending_time_zone"
)


def limit_from_row(row: Sequence[Any]) -> Limit:
    """A `Limit` from the columns `LIMIT_COLUMNS` names, in that order."""
    daily, pending_set, pending_daily, pending_ms, zone, pending_zone = row
    pending = Pending(pending_daily, pending_ms, pending_zone) if pending_set else None
    return Limit(daily, pending, zone)


def _spent(conn: sqlite3.Connection, user: int, day: int, zone: str | None) -> int:
    """Coins the user gifted on `day` in `zone`, before this batch."""
    (coins,) = conn.execute(
        "SELECT coalesce(sum(coins), 0) FROM spend_quarters"
        " WHERE user_id = ? AND quarter >= ? AND quarter < ?",
        (
            user,
            day_start_ms(day, zone) // SPEND_QUARTER_MS,
            day_start_ms(day + 1, zone) // SPEND_QUARTER_MS,
        ),
    ).fetchone()
    return int(coins)


def _room_command(command: RoomCommand, planner: BatchPlanner) -> tuple[list[RoomEvent], bool]:
    book = planner.book_for_batch(command.room)
    if command.action is RoomAction.EXPIRE_STREAKS:
        return book.expire_streaks(command.at_ms), True
    if command.action is RoomAction.END:
        made = book.end(command.at_ms)
        return made, bool(made)
    if book.status is not RoomStatus.LIVE:
        return [], False
    book.set_goal(command.goal_title, command.goal_coins)
    return [], True


def write_batch(
    conn: sqlite3.Connection, commands: Sequence[Command], planner: BatchPlanner
) -> BatchResult:
    result = BatchResult(outcomes=[])
    known = _known_requests(conn, commands)
    limits = _limits(conn, commands)
    costs = bases(conn, (c.sender for c in commands if isinstance(c, GiftCommand)))
    costs_changed: dict[int, int] = {}
    spent: dict[tuple[int, int], int] = {}  # (user, day in their zone) -> coins, batch included
    spent_in_batch: dict[tuple[int, int], int] = {}  # (user, quarter hour) -> coins
    transfers: list[tuple[Any, ...]] = []
    entries: list[tuple[int, int, int, int | None]] = []  # account, transfer, amount, after
    read = _balances(
        conn,
        {
            account
            for c in commands
            if isinstance(c, GiftCommand)
            for account in (coin_account(c.sender), diamond_account(c.host))
        },
    )
    balance = dict(read)  # running, within the batch
    requests: list[tuple[Any, ...]] = []
    gifters: dict[tuple[int, int], list[Any]] = {}
    touched: set[RoomId] = set()
    events: list[RoomEvent] = []
    next_transfer = 0
    spent_total = diamonds_total = 0

    for command in commands:
        if isinstance(command, RoomCommand):
            made, changed = _room_command(command, planner)
            events.extend(made)
            touched.add(command.room)
            result.outcomes.append(RoomDone(changed=changed))
            continue

        key = (command.sender, command.request_id)
        earlier = known.get(key)
        if earlier is not None:
            result.outcomes.append(GiftAccepted(earlier, duplicate=True))
            continue
        book = planner.book_for_batch(command.room)
        refusal = book.refuse_gift(command.sender)
        if refusal is not None:
            result.outcomes.append(GiftRefused(refusal))
            continue
        limit = limits.get(command.sender)
        in_force = limit.at(command.at_ms) if limit is not None else None
        zone = in_force.time_zone if in_force is not None else None
        day = day_of(command.at_ms, zone)
        today = (command.sender, day)
        if in_force is not None:
            daily = in_force.daily_coins
            if today not in spent:
                spent[today] = _spent(conn, command.sender, day, zone)
            left = left_today(daily, spent[today])
            if left is not None and command.coins > left:
                message = (
                    f"your daily limit is {daily} coins: you can spend {left} more today"
                    f" (this gift costs {command.coins}; the day turns at midnight {zone or 'UTC'})"
                )
                result.outcomes.append(GiftRefused(Refusal(Code.SPENDING_LIMIT, message)))
                continue
        sender_account = coin_account(command.sender)
        host_account = diamond_account(command.host)
        have = balance[sender_account]
        if have < command.coins:
            message = f"not enough coins: this gift costs {command.coins}, you have {have}"
            result.outcomes.append(GiftRefused(Refusal(Code.INSUFFICIENT_COINS, message)))
            continue
        coins_after = balance[sender_account] = have - command.coins
        balance[host_account] += command.diamonds
        cost = cost_leaving(costs[command.sender], coins_after + command.coins, command.coins)
        costs[command.sender] = costs_changed[command.sender] = costs[command.sender] - cost
        if today in spent:
            spent[today] += command.coins
        quarter = (command.sender, command.at_ms // SPEND_QUARTER_MS)
        spent_in_batch[quarter] = spent_in_batch.get(quarter, 0) + command.coins
        if not next_transfer:
            (last,) = conn.execute("SELECT coalesce(max(id), 0) FROM transfers").fetchone()
            next_transfer = int(last) + 1
        transfer = next_transfer
        next_transfer += 1
        transfers.append(
            (
                transfer,
                "gift",
                command.at_ms,
                command.sender,
                command.host,
                command.room,
                command.gift.id,
                command.count,
                cost,
            )
        )
        for leg in gift_legs(command.sender, command.host, command.coins, command.diamonds):
            account = int(leg.account)
            after = balance[account] if account in (sender_account, host_account) else None
            entries.append((account, transfer, leg.amount, after))
        spent_total += command.coins
        diamonds_total += command.diamonds

        made = book.apply_gift(
            command.sender,
            command.sender_name,
            command.gift,
            command.count,
            command.diamonds,
            command.at_ms,
        )
        events.extend(made)
        touched.add(command.room)
        gift_seq = made[-1].seq
        ok = GiftOk(gift_seq, coins_after, command.coins, command.diamonds, cost)
        known[key] = ok
        requests.append(
            (
                command.sender,
                command.request_id,
                command.room,
                gift_seq,
                transfer,
                coins_after,
                command.coins,
                command.diamonds,
            )
        )
        slot = gifters.setdefault(
            (command.room, command.sender), [command.sender_name, 0, gift_seq]
        )
        slot[1] += command.coins
        result.outcomes.append(GiftAccepted(ok))

    if transfers:
        _store_balances(conn, read, balance)
        _write_gifts(conn, transfers, entries, requests, gifters)
        store_bases(conn, costs_changed)
        insert_rows(
            conn,
            "INSERT INTO spend_quarters (user_id, quarter, coins)",
            [(user, quarter, coins) for (user, quarter), coins in spent_in_batch.items()],
            "ON CONFLICT (user_id, quarter) DO UPDATE SET coins = coins + excluded.coins",
        )
        add(conn, SystemAccount.COINS_SPENT, spent_total)
        add(conn, SystemAccount.DIAMONDS_ISSUED, -diamonds_total)
    if events:
        _write_events(conn, events, planner, result)
    if touched:
        _write_rooms(conn, planner, touched, events)
    return result


def _write_gifts(
    conn: sqlite3.Connection,
    transfers: list[tuple[Any, ...]],
    entries: list[tuple[int, int, int, int | None]],
    requests: list[tuple[Any, ...]],
    gifters: dict[tuple[int, int], list[Any]],
) -> None:
    insert_rows(
        conn,
        "INSERT INTO transfers (id, kind, at_ms, user_id, counterparty_id, room_id, gift_id,"
        " count, cost_millicents)",
        transfers,
    )
    insert_rows(
        conn, "INSERT INTO entries (account_id, transfer_id, amount, balance_after)", entries
    )
    insert_rows(
        conn,
        "INSERT INTO gift_requests (sender_id, request_id, room_id, seq, transfer_id,"
        " coins_after, coins_spent, diamonds)",
        requests,
    )
    insert_rows(
        conn,
        "INSERT INTO room_gifters (room_id, user_id, name, coins, first_seq)",
        [(room, uid, v[0], v[1], v[2]) for (room, uid), v in gifters.items()],
        "ON CONFLICT (room_id, user_id) DO UPDATE SET coins = coins + excluded.coins",
    )


def _write_events(
    conn: sqlite3.Connection, events: list[RoomEvent], planner: BatchPlanner, result: BatchResult
) -> None:
    rows = []
    for event in events:
        body = planner.encode(event)
        result.events.append((event, body))
        streak = event.streak if event.kind is EventKind.GIFT else None
        rows.append(
            (
                event.room,
                event.seq,
                event.kind.value,
                event.at_ms,
                event.sender,
                event.gift.id if event.gift else None,
                streak.id if streak else None,
                streak.total if streak else None,
                body,
            )
        )
    insert_rows(
        conn,
        "INSERT INTO room_events (room_id, seq, kind, at_ms, sender_id, gift_id, streak_id,"
        " streak_total, body)",
        rows,
    )


def _write_rooms(
    conn: sqlite3.Connection, planner: BatchPlanner, rooms: set[RoomId], events: list[RoomEvent]
) -> None:
    last_ms: dict[RoomId, int] = {}
    for event in events:
        last_ms[event.room] = max(last_ms.get(event.room, 0), event.at_ms)
    rows = []
    for room in rooms:
        book = planner.book_for_batch(room)
        goal = book.goal
        status = book.status.value
        rows.append(
            (
                book.seq,
                status,
                status,
                last_ms.get(room, 0),
                goal.title if goal else None,
                goal.coins if goal else None,
                goal.progress if goal else 0,
                room,
            )
        )
    update_rows(
        conn,
        "UPDATE rooms SET seq = v.column1, status = v.column2,"
        " ended_ms = CASE WHEN v.column3 = 'ended' THEN coalesce(ended_ms, v.column4) END,"
        " goal_title = v.column5, goal_coins = v.column6, goal_progress = v.column7"
        " FROM {values} WHERE rooms.id = v.column8",
        rows,
    )


__all__ = ["add", "write_batch"]
