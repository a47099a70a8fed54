"""The Broker port: hands encoded room events to every process that serves the room.

A process calls `subscribe(room)` while it has sockets in the room, and `publish` after each
commit; the broker calls the `deliver` callback given to `start` with every message of a
subscribed room, in publish order per room. Delivery is at-most-once between processes; a
gap in `seq` makes a socket resync through `since`, which reads the ledger, not the broker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from server.domain.money import RoomId

Deliver = Callable[[RoomId, bytes], None]


class Broker(Protocol):
    async def start(self, deliver: Deliver) -> None: ...

    async def subscribe(self, room: RoomId) -> None: ...

    async def unsubscribe(self, room: RoomId) -> None: ...

    def publish(self, room: RoomId, message: bytes) -> None:
        """Hand a message over without waiting (adapters buffer, bounded, and send it)."""
        ...

    async def close(self) -> None: ...
