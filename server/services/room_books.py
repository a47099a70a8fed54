"""The live rooms' state in memory: each room's book, what was published, throttled updates.

`RoomBooks` is owned by the gift writer: only the writer mutates a book (through the store's
batch, which calls `book_for_batch`, and in `committed`). Everyone else reads: the welcome
takes `published_seq`, `top` and `goal`; HTTP reads `book`. Only live rooms are kept; an
ended live leaves nothing behind (`forget`), and a failed batch drops the books it touched
(`drop`) so they reload from the ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from server.config import Settings
from server.domain.money import RoomId, UserId
from server.domain.rooms import EventKind, RoomBook, RoomEvent, RoomStatus
from server.protocol.messages import dumps, encode_event, top_doc
from server.storage.base import BatchResult, LedgerStore

Top = list[tuple[UserId, str, int]]
Goal = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class Published:
    """What the writer hands the fan-out after a commit."""

    room: RoomId
    seq: int  # 0 for unnumbered updates (top, goal)
    frame: bytes
    ends_room: bool = False


Publish = Callable[[Published], None]


class RoomBooks:
    def __init__(self, settings: Settings, store: LedgerStore, publish: Publish) -> None:
        self.settings = settings
        self.store = store
        self.publish = publish
        self._books: dict[RoomId, RoomBook] = {}
        self._loading: dict[RoomId, asyncio.Future[RoomBook | None]] = {}
        self._published_seq: dict[RoomId, int] = {}
        self._tops: dict[RoomId, Top] = {}
        self._updates_due: dict[RoomId, int] = {}  # room -> earliest ms for top/goal update
        self._last_update_ms: dict[RoomId, int] = {}
        self._sent_top: dict[RoomId, Top] = {}
        self._sent_goal: dict[RoomId, Goal | None] = {}
        self._events_since_prune: dict[RoomId, int] = {}

    # --- reads --------------------------------------------------------------------------

    async def book(self, room: RoomId) -> RoomBook | None:
        """The room's book, loaded once (single flight) from the ledger."""
        found = self._books.get(room)
        if found is not None:
            return found
        pending = self._loading.get(room)
        if pending is not None:
            return await pending
        pending = asyncio.get_running_loop().create_future()
        self._loading[room] = pending
        try:
            loaded = await self.store.load_book(room, self.settings.streak_window_ms)
        except BaseException as exc:
            pending.set_exception(exc)
            pending.exception()  # retrieved here: the awaiting callers get it too
            raise
        finally:
            del self._loading[room]
        if loaded is not None and loaded.status is RoomStatus.LIVE:
            # Only live rooms stay in memory; an ended room's book is read and let go.
            self._books[room] = loaded
            self._published_seq[room] = loaded.seq
            self._tops[room] = loaded.top(self.settings.leaderboard_size)
        pending.set_result(loaded)
        return loaded

    def get(self, room: RoomId) -> RoomBook | None:
        return self._books.get(room)

    def __contains__(self, room: RoomId) -> bool:
        return room in self._books

    def items(self) -> Iterator[tuple[RoomId, RoomBook]]:
        return iter(list(self._books.items()))

    def published_seq(self, room: RoomId) -> int:
        return self._published_seq.get(room, 0)

    def top(self, room: RoomId) -> Top:
        return self._tops.get(room, [])

    def goal(self, room: RoomId) -> Goal | None:
        book = self._books.get(room)
        if book is None or book.goal is None:
            return None
        return (book.goal.title, book.goal.coins, book.goal.progress)

    def rooms_in_memory(self) -> int:
        """How many rooms any per-room table still holds (for tests and metrics)."""
        return len(set().union(*self._tables()))

    # --- the writer's side --------------------------------------------------------------

    def book_for_batch(self, room: RoomId) -> RoomBook:
        """BatchPlanner: the book a batch numbers events in (loaded before the batch)."""
        return self._books[room]

    def encode(self, event: RoomEvent) -> bytes:
        """BatchPlanner: an event's bytes, stored for replay and sent as they are."""
        return encode_event(event)

    def drop(self, room: RoomId) -> None:
        """A batch failed: what the book planned was not written; reload it from the ledger."""
        self._books.pop(room, None)

    def committed(self, result: BatchResult, rooms: set[RoomId], now_ms: int) -> None:
        """Publish a committed batch's events in order and refresh the rooms it touched."""
        for event, frame in result.events:
            self._published_seq[event.room] = event.seq
            ends = event.kind is EventKind.ROOM_ENDED
            self.publish(Published(event.room, event.seq, frame, ends_room=ends))
            self._events_since_prune[event.room] = self._events_since_prune.get(event.room, 0) + 1
        for room in rooms:
            book = self._books.get(room)
            if book is None:
                continue
            if book.status is RoomStatus.ENDED:
                self._forget(room)
                continue
            self._tops[room] = book.top(self.settings.leaderboard_size)
            earliest = self._last_update_ms.get(room, 0) + self.settings.room_update_interval_ms
            self._updates_due.setdefault(room, max(now_ms, earliest))

    def send_due_updates(self, now_ms: int) -> list[RoomId]:
        """Top and goal frames, at most one of each per room per update interval.

        Returns the rooms whose replayable history is due for pruning."""
        prune: list[RoomId] = []
        for room, due in list(self._updates_due.items()):
            if due > now_ms:
                continue
            del self._updates_due[room]
            book = self._books.get(room)
            if book is None:
                continue
            sent = False
            top = self._tops.get(room, [])
            if top != self._sent_top.get(room):
                self._sent_top[room] = top
                self.publish(Published(room, 0, dumps({"type": "top", "top": top_doc(top)})))
                sent = True
            goal = (book.goal.title, book.goal.coins, book.goal.progress) if book.goal else None
            if goal != self._sent_goal.get(room):
                self._sent_goal[room] = goal
                if goal is not None:
                    title, coins, progress = goal
                    frame = {"type": "goal", "title": title, "coins": coins, "progress": progress}
                    self.publish(Published(room, 0, dumps(frame)))
                    sent = True
            if sent:
                self._last_update_ms[room] = now_ms
            if self._events_since_prune.get(room, 0) >= self.settings.room_events_prune_every:
                self._events_since_prune[room] = 0
                prune.append(room)
        return prune

    def prune_put_off(self, room: RoomId) -> None:
        """A prune that failed (storage busy or full) is due again with the room's next update."""
        if room in self._books:
            due = max(self._events_since_prune.get(room, 0), self.settings.room_events_prune_every)
            self._events_since_prune[room] = due

    def _forget(self, room: RoomId) -> None:
        """An ended live leaves nothing behind in memory (its history is in the ledger)."""
        for table in self._tables():
            table.pop(room, None)

    def _tables(self) -> tuple[dict[RoomId, Any], ...]:
        return (
            self._books,
            self._published_seq,
            self._tops,
            self._updates_due,
            self._last_update_ms,
            self._sent_top,
            self._sent_goal,
            self._events_since_prune,
        )
