"""What a run records for the verifier: acknowledged gifts and sampled streams (pure values)."""

from __future__ import annotations

from dataclasses import dataclass, field

# An acknowledged gift: (room, sender, request id, seq, gift id, count, coins, diamonds)
Ack = tuple[int, int, str, int, str, int, int, int]

# A stream event: (seq, kind, sender id, gift id, count, coins, diamonds); 0/"" when absent.
StreamEvent = tuple[int, str, int, str, int, int, int]


@dataclass(slots=True)
class StreamRecord:
    """A sampled client's view of one room: every numbered event after `start_seq`."""

    room: int
    who: str
    start_seq: int
    events: list[StreamEvent] = field(default_factory=list)
    resynced: bool = False
    ended: bool = False
