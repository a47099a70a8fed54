"""In-process fan-out: publish calls `deliver` directly for subscribed rooms."""

from __future__ import annotations

from server.domain.money import RoomId
from server.pubsub.base import Deliver


class MemoryBroker:
    def __init__(self) -> None:
        self._deliver: Deliver | None = None
        self._rooms: set[RoomId] = set()

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def subscribe(self, room: RoomId) -> None:
        self._rooms.add(room)

    async def unsubscribe(self, room: RoomId) -> None:
        self._rooms.discard(room)

    def publish(self, room: RoomId, message: bytes) -> None:
        if self._deliver is not None and room in self._rooms:
            self._deliver(room, message)

    async def close(self) -> None:
        self._deliver = None
        self._rooms.clear()
