"""Rooms on SQLite: going live, reading rooms, overlay versions, a room's book and history.

A mixin of `SqliteStore`: it reads through the reader connection (`_read`) and writes through
one writer transaction (`_tx`), both provided by the store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson

from server.domain.catalog import Gift
from server.domain.money import RoomId, UserId
from server.domain.rooms import Goal, RoomBook, RoomStatus, Streak
from server.storage.base import RoomRow

T = TypeVar("T")


_ROOM_COLUMNS = (
    "r.id, r.host_id, u.name, r.title, r.status, r.seq, r.started_ms, r.ended_ms, "
    "r.overlay_version, r.goal_title, r.goal_coins, r.goal_progress"
)


def _room(row: Sequence[Any]) -> RoomRow:
    return RoomRow(
        id=RoomId(row[0]),
        host=UserId(row[1]),
        host_name=row[2],
        title=row[3],
        status=RoomStatus(row[4]),
        seq=row[5],
        started_ms=row[6],
        ended_ms=row[7],
        overlay_version=row[8],
        goal_title=row[9],
        goal_coins=row[10],
        goal_progress=row[11],
    )


class RoomQueries:
    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    async def _tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    async def create_room(
        self, host: UserId, title: str, now_ms: int, live_rooms_max: int
    ) -> RoomRow | None:
        def fn(conn: sqlite3.Connection) -> RoomRow | None:
            (live,) = conn.execute(
                "SELECT count(*) FROM rooms WHERE host_id = ? AND status = 'live'", (host,)
            ).fetchone()
            if live >= live_rooms_max:
                return None
            cur = conn.execute(
                "INSERT INTO rooms (host_id, title, status, started_ms) VALUES (?, ?, 'live', ?)",
                (host, title, now_ms),
            )
            row = conn.execute(
                f"SELECT {_ROOM_COLUMNS} FROM rooms r JOIN users u ON u.id = r.host_id"
                " WHERE r.id = ?",
                (cur.lastrowid,),
            ).fetchone()
            return _room(row)

        return await self._tx(fn)

    async def get_room(self, room: RoomId) -> RoomRow | None:
        rows = await self._read(
            f"SELECT {_ROOM_COLUMNS} FROM rooms r JOIN users u ON u.id = r.host_id WHERE r.id = ?",
            (room,),
        )
        return _room(rows[0]) if rows else None

    async def live_rooms(self, limit: int) -> list[RoomRow]:
        rows = await self._read(
            f"SELECT {_ROOM_COLUMNS} FROM rooms r JOIN users u ON u.id = r.host_id"
            " WHERE r.status = 'live' ORDER BY r.id DESC LIMIT ?",
            (limit,),
        )
        return [_room(r) for r in rows]

    async def bump_overlay_version(self, room: RoomId) -> int:
        def fn(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "UPDATE rooms SET overlay_version = overlay_version + 1 WHERE id = ?"
                " RETURNING overlay_version",
                (room,),
            ).fetchone()
            return int(row[0]) if row else 0

        return await self._tx(fn)

    async def load_book(self, room: RoomId, streak_window_ms: int) -> RoomBook | None:
        found = await self.get_room(room)
        if found is None:
            return None
        book = RoomBook(
            room=room,
            host=found.host,
            status=found.status,
            seq=found.seq,
            streak_window_ms=streak_window_ms,
        )
        for uid, name, coins in await self._read(
            "SELECT user_id, name, coins FROM room_gifters WHERE room_id = ? ORDER BY first_seq",
            (room,),
        ):
            book.spent[UserId(uid)] = coins
            book.names[UserId(uid)] = name
        if found.goal_title is not None and found.goal_coins is not None:
            book.goal = Goal(found.goal_title, found.goal_coins, found.goal_progress)
        await self._load_streaks(book)
        return book

    async def _load_streaks(self, book: RoomBook) -> None:
        """Open streaks: each sender's latest gift that carries a streak not yet ended."""
        rows = await self._read(
            "SELECT e.sender_id, e.streak_id, e.streak_total, e.at_ms, e.body FROM room_events e"
            " WHERE e.room_id = ? AND e.kind = 'gift' AND e.streak_id IS NOT NULL"
            " AND e.seq = (SELECT max(seq) FROM room_events x WHERE x.room_id = e.room_id"
            "              AND x.sender_id = e.sender_id AND x.kind IN ('gift', 'streak_end'))",
            (book.room,),
        )
        for sender, streak_id, total, at_ms, body in rows:
            doc = orjson.loads(body)
            g = doc["gift"]
            gift = Gift(g["id"], g["name"], g["coins"], True, g["animation"])
            book.streaks[UserId(sender)] = Streak(
                streak_id, UserId(sender), doc["sender"]["name"], gift, total, at_ms
            )

    async def events_after(self, room: RoomId, since: int, limit: int) -> list[bytes] | None:
        rows = await self._read(
            "SELECT seq, body FROM room_events WHERE room_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (room, since, limit),
        )
        if rows and rows[0][0] != since + 1:
            return None  # the oldest kept event is past since+1: pruned history
        if not rows:
            found = await self._read("SELECT seq FROM rooms WHERE id = ?", (room,))
            latest = found[0][0] if found else 0
            if latest != since:
                return None  # pruned past since, or since is ahead of the room
        return [bytes(r[1]) for r in rows]

    async def prune_events(self, room: RoomId, keep: int) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM room_events WHERE room_id = ?"
                " AND seq <= (SELECT seq FROM rooms WHERE id = ?) - ?",
                (room, room, keep),
            )

        await self._tx(fn)
