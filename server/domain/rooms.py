"""A live room's numbered history: seq, streaks, first gifts, the leaderboard and the goal.

`RoomBook` is the state the writer owns for one room. Every numbered event (`gift`,
`streak_end`, `room_ended`) is made here, in commit order, so `seq` rises by exactly one per
event. Time is a parameter; nothing here awaits or touches storage.

Streaks: consecutive sends of the same streakable gift by the same sender, each within
`streak_window_ms` of the previous, form one streak whose id is the seq of its first send.
A send of any other gift by that sender ends the open streak first (its `streak_end` comes
before the new gift). A streak also ends `streak_window_ms` after its last send
(`expire_streaks`), and every open streak ends when the room ends.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from enum import StrEnum

from server.domain.catalog import Gift
from server.domain.errors import Code, Refusal
from server.domain.money import RoomId, UserId


class RoomStatus(StrEnum):
    LIVE = "live"
    ENDED = "ended"


class EventKind(StrEnum):
    GIFT = "gift"
    STREAK_END = "streak_end"
    ROOM_ENDED = "room_ended"


@dataclass(frozen=True, slots=True)
class StreakView:
    id: int
    total: int
    ended: bool


@dataclass(frozen=True, slots=True)
class RoomEvent:
    """One numbered room event, as the contract describes it (the protocol encodes it)."""

    room: RoomId
    seq: int
    kind: EventKind
    at_ms: int
    sender: UserId | None = None
    sender_name: str = ""
    gift: Gift | None = None
    count: int = 0
    coins: int = 0
    diamonds: int = 0
    streak: StreakView | None = None
    first: bool = False

    @property
    def shoutout(self) -> str:
        if self.gift is None:
            return ""
        shown = self.streak.total if self.streak is not None else self.count
        suffix = f" x{shown}" if shown > 1 else ""
        return f"{self.sender_name} sent {self.gift.name}{suffix}"


@dataclass(slots=True)
class Streak:
    id: int
    sender: UserId
    sender_name: str
    gift: Gift
    total: int
    last_ms: int


@dataclass(slots=True)
class Goal:
    title: str
    coins: int
    progress: int = 0


@dataclass(slots=True)
class RoomBook:
    room: RoomId
    host: UserId
    status: RoomStatus
    seq: int
    streak_window_ms: int
    spent: dict[UserId, int] = field(default_factory=dict)  # coins gifted this live, by sender
    names: dict[UserId, str] = field(default_factory=dict)
    streaks: dict[UserId, Streak] = field(default_factory=dict)  # open streaks by sender
    goal: Goal | None = None

    # --- rules --------------------------------------------------------------------------

    def refuse_gift(self, sender: UserId) -> Refusal | None:
        """The rules this room's own state decides (live, not the host's own room)."""
        if self.status is not RoomStatus.LIVE:
            return Refusal(Code.ROOM_NOT_LIVE, "this live has ended; gifts are no longer accepted")
        if sender == self.host:
            return Refusal(Code.SELF_GIFT, "a host cannot send gifts in their own room")
        return None

    # --- events -------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _end_streak(self, streak: Streak, at_ms: int) -> RoomEvent:
        del self.streaks[streak.sender]
        return RoomEvent(
            room=self.room,
            seq=self._next_seq(),
            kind=EventKind.STREAK_END,
            at_ms=at_ms,
            sender=streak.sender,
            sender_name=streak.sender_name,
            gift=streak.gift,
            streak=StreakView(streak.id, streak.total, ended=True),
        )

    def apply_gift(
        self, sender: UserId, sender_name: str, gift: Gift, count: int, diamonds: int, at_ms: int
    ) -> list[RoomEvent]:
        """Number an accepted gift: its `streak_end` (if it breaks a streak), then the gift."""
        if self.status is not RoomStatus.LIVE or sender == self.host:
            raise RuntimeError("apply_gift on a gift the room refuses")  # refuse_gift said no
        events: list[RoomEvent] = []
        open_streak = self.streaks.get(sender)
        if open_streak is not None and (
            open_streak.gift.id != gift.id or at_ms - open_streak.last_ms > self.streak_window_ms
        ):
            events.append(self._end_streak(open_streak, at_ms))
            open_streak = None
        seq = self._next_seq()
        view: StreakView | None = None
        if gift.streakable:
            if open_streak is None:
                open_streak = Streak(seq, sender, sender_name, gift, 0, at_ms)
                self.streaks[sender] = open_streak
            open_streak.total += count
            open_streak.last_ms = at_ms
            view = StreakView(open_streak.id, open_streak.total, ended=False)
        coins = gift.coins * count
        first = sender not in self.spent
        self.spent[sender] = self.spent.get(sender, 0) + coins
        self.names[sender] = sender_name
        if self.goal is not None:
            self.goal.progress += coins
        events.append(
            RoomEvent(
                room=self.room,
                seq=seq,
                kind=EventKind.GIFT,
                at_ms=at_ms,
                sender=sender,
                sender_name=sender_name,
                gift=gift,
                count=count,
                coins=coins,
                diamonds=diamonds,
                streak=view,
                first=first,
            )
        )
        return events

    def expired_streaks(self, now_ms: int) -> bool:
        return any(now_ms - s.last_ms >= self.streak_window_ms for s in self.streaks.values())

    def expire_streaks(self, now_ms: int) -> list[RoomEvent]:
        """`streak_end` for every streak whose last send is `streak_window_ms` old."""
        due = [s for s in self.streaks.values() if now_ms - s.last_ms >= self.streak_window_ms]
        due.sort(key=lambda s: (s.last_ms, s.id))
        return [self._end_streak(s, now_ms) for s in due]

    def end(self, at_ms: int) -> list[RoomEvent]:
        """End the live: open streaks end first, then `room_ended`. Ending twice does nothing."""
        if self.status is RoomStatus.ENDED:
            return []
        events = [
            self._end_streak(s, at_ms) for s in sorted(self.streaks.values(), key=lambda s: s.id)
        ]
        self.status = RoomStatus.ENDED
        events.append(
            RoomEvent(room=self.room, seq=self._next_seq(), kind=EventKind.ROOM_ENDED, at_ms=at_ms)
        )
        return events

    def set_goal(self, title: str, coins: int) -> Goal:
        self.goal = Goal(title, coins, 0)
        return self.goal

    def top(self, size: int) -> list[tuple[UserId, str, int]]:
        """This live's gifters by coins spent, most first; ties go to whoever gave first."""
        ranked = heapq.nsmallest(
            size, enumerate(self.spent.items()), key=lambda item: (-item[1][1], item[0])
        )
        return [(uid, self.names.get(uid, ""), coins) for _, (uid, coins) in ranked]
