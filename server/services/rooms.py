"""Rooms: going live, listing, ending, goals, overlay tokens and the leaderboard.

Ending a room and setting a goal go through the gift writer, so they take their place in the
room's numbered history (open streaks end before `room_ended`; goal progress counts exactly
the gifts committed after the goal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server.config import Settings
from server.domain.errors import Code, Refusal
from server.domain.money import RoomId
from server.domain.rooms import RoomStatus
from server.domain.timefmt import rfc3339
from server.domain.tokens import issue_overlay_token, read_overlay_token
from server.protocol.messages import top_doc
from server.services.clock import Clock
from server.services.gifting import GiftService
from server.services.users import Caller
from server.storage.base import LedgerStore, RoomAction, RoomCommand, RoomRow

ViewerCount = Callable[[RoomId], int]


@dataclass(frozen=True, slots=True)
class OverlayAccess:
    room: RoomId
    version: int


class RoomService:
    def __init__(
        self,
        settings: Settings,
        store: LedgerStore,
        gifts: GiftService,
        secret: bytes,
        clock: Clock,
        viewers: ViewerCount,
    ) -> None:
        self.settings = settings
        self.store = store
        self.gifts = gifts
        self.secret = secret
        self.clock = clock
        self.viewers = viewers

    def overlay_token(self, room: RoomRow) -> str:
        return issue_overlay_token(self.secret, room.id, room.overlay_version)

    async def go_live(self, caller: Caller, body: Any) -> dict[str, Any] | Refusal:
        title = body.get("title") if isinstance(body, dict) else None
        if not isinstance(title, str) or not title.strip():
            return Refusal(Code.INVALID, 'send {"title": "..."}: 1-100 characters')
        title = title.strip()
        if len(title) > self.settings.room_title_chars_max:
            return Refusal(
                Code.INVALID,
                f"title must be at most {self.settings.room_title_chars_max} characters",
            )
        if not caller.adult:
            return Refusal(Code.AGE_RESTRICTED, "you must be 18 or older to host a live")
        room = await self.store.create_room(
            caller.id, title, self.clock(), self.settings.rooms_per_host_max
        )
        if room is None:
            return Refusal(
                Code.FORBIDDEN,
                f"you already have {self.settings.rooms_per_host_max} live room(s): end one first",
            )
        doc = self.room_doc(room)
        doc["overlay_token"] = self.overlay_token(room)
        return doc

    def room_doc(self, room: RoomRow) -> dict[str, Any]:
        return {
            "id": room.id,
            "title": room.title,
            "host": {"id": room.host, "name": room.host_name},
            "status": room.status.value,
            "started_at": rfc3339(room.started_ms),
        }

    async def list_live(self) -> dict[str, Any]:
        rooms = await self.store.live_rooms(self.settings.rooms_list_max)
        items = []
        for room in rooms:
            doc = self.room_doc(room)
            doc["viewers"] = self.viewers(room.id)
            items.append(doc)
        items.sort(key=lambda d: -int(d["viewers"]))
        return {"items": items}

    async def describe(self, room_id: RoomId) -> dict[str, Any] | Refusal:
        room = await self.store.get_room(room_id)
        if room is None:
            return Refusal(Code.NOT_FOUND, f"there is no room {room_id}")
        doc = self.room_doc(room)
        if room.status is RoomStatus.LIVE:
            await self.gifts.books.book(room.id)
            doc["seq"] = max(room.seq, self.gifts.books.published_seq(room.id))
        else:
            doc["seq"] = room.seq
            doc["ended_at"] = rfc3339(room.ended_ms) if room.ended_ms else None
        doc["viewers"] = self.viewers(room.id) if room.status is RoomStatus.LIVE else 0
        doc["top"] = await self._top(room)
        doc["goal"] = self._goal(room)
        book = await self.gifts.books.book(room.id)
        coins = sum(book.spent.values()) if book is not None else 0
        doc["coins"] = coins  # gifted this live, all senders
        doc["diamonds"] = self.gifts.rates.diamonds_for(coins)  # credited to the host this live
        return doc

    async def _top(self, room: RoomRow) -> list[dict[str, Any]]:
        book = await self.gifts.books.book(room.id)
        if book is None:
            return []
        if room.status is RoomStatus.LIVE:
            return top_doc(self.gifts.books.top(room.id))
        return top_doc(book.top(self.settings.leaderboard_size))

    def _goal(self, room: RoomRow) -> dict[str, Any] | None:
        live = self.gifts.books.goal(room.id)
        if live is not None:
            return {"title": live[0], "coins": live[1], "progress": live[2]}
        if room.goal_title is None:
            return None
        return {"title": room.goal_title, "coins": room.goal_coins, "progress": room.goal_progress}

    async def leaderboard(self, room_id: RoomId) -> dict[str, Any] | Refusal:
        room = await self.store.get_room(room_id)
        if room is None:
            return Refusal(Code.NOT_FOUND, f"there is no room {room_id}")
        return {"top": await self._top(room)}

    async def _hosted(self, caller: Caller, room_id: RoomId) -> RoomRow | Refusal:
        room = await self.store.get_room(room_id)
        if room is None:
            return Refusal(Code.NOT_FOUND, f"there is no room {room_id}")
        if room.host != caller.id:
            return Refusal(Code.FORBIDDEN, "only this room's host can do that")
        return room

    async def end(self, caller: Caller, room_id: RoomId) -> dict[str, Any] | Refusal:
        room = await self._hosted(caller, room_id)
        if isinstance(room, Refusal):
            return room
        if room.status is RoomStatus.LIVE:
            done = await self.gifts.room_command(RoomCommand(room.id, RoomAction.END, self.clock()))
            if isinstance(done, Refusal):
                return done
        return {"status": RoomStatus.ENDED.value}

    async def set_goal(
        self, caller: Caller, room_id: RoomId, body: Any
    ) -> dict[str, Any] | Refusal:
        room = await self._hosted(caller, room_id)
        if isinstance(room, Refusal):
            return room
        title = body.get("title") if isinstance(body, dict) else None
        coins = body.get("coins") if isinstance(body, dict) else None
        limit = self.settings.goal_title_chars_max
        if not isinstance(title, str) or not 1 <= len(title.strip()) <= limit:
            return Refusal(Code.INVALID, f"goal title must be 1-{limit} characters")
        if type(coins) is not int or not 1 <= coins <= self.settings.goal_coins_max:
            return Refusal(
                Code.INVALID, f"goal coins must be an integer 1-{self.settings.goal_coins_max}"
            )
        if room.status is not RoomStatus.LIVE:
            return Refusal(Code.ROOM_NOT_LIVE, "this live has ended")
        command = RoomCommand(
            room.id, RoomAction.SET_GOAL, self.clock(), goal_title=title.strip(), goal_coins=coins
        )
        done = await self.gifts.room_command(command)
        if isinstance(done, Refusal):
            return done
        if not done.changed:
            return Refusal(Code.ROOM_NOT_LIVE, "this live has ended")
        return {"title": title.strip(), "coins": coins, "progress": 0}

    async def current_overlay(self, caller: Caller, room_id: RoomId) -> dict[str, Any] | Refusal:
        """The host's current overlay token, to show the overlay URL again without rotating."""
        room = await self._hosted(caller, room_id)
        if isinstance(room, Refusal):
            return room
        return {"overlay_token": self.overlay_token(room), "version": room.overlay_version}

    async def rotate_overlay(self, caller: Caller, room_id: RoomId) -> dict[str, Any] | Refusal:
        room = await self._hosted(caller, room_id)
        if isinstance(room, Refusal):
            return room
        version = await self.store.bump_overlay_version(room.id)
        return {
            "overlay_token": issue_overlay_token(self.secret, room.id, version),
            "version": version,
        }

    async def overlay_access(self, token: str | None, room_id: RoomId) -> OverlayAccess | None:
        if not token:
            return None
        claim = read_overlay_token(self.secret, token)
        if claim is None or claim.room != room_id:
            return None
        room = await self.store.get_room(room_id)
        if room is None or room.overlay_version != claim.version:
            return None
        return OverlayAccess(room.id, claim.version)
