"""RoomBook: seq, streaks, first gifts, the leaderboard and the goal, with time as a parameter."""

from __future__ import annotations

import pytest

from server.domain.catalog import Gift
from server.domain.errors import Code
from server.domain.money import RoomId, UserId
from server.domain.rooms import EventKind, RoomBook, RoomEvent, RoomStatus, StreakView

ROSE = Gift("rose", "Rose", 1, True, "small")
TIKTOK = Gift("tiktok", "TikTok", 1, True, "small")
PERFUME = Gift("perfume", "Perfume", 20, True, "small")
CORGI = Gift("corgi", "Corgi", 299, False, "medium")
WINDOW_MS = 3000
HOST = UserId(1)
ALICE = UserId(2)
BOB = UserId(3)
CAROL = UserId(4)
NAMES = {ALICE: "alice", BOB: "bob", CAROL: "carol"}


def book(seq: int = 0) -> RoomBook:
    return RoomBook(RoomId(7), HOST, RoomStatus.LIVE, seq, WINDOW_MS)


def send(b: RoomBook, sender: UserId, gift: Gift, at_ms: int, count: int = 1) -> list[RoomEvent]:
    return b.apply_gift(sender, NAMES[sender], gift, count, gift.coins * count, at_ms)


def kinds(events: list[RoomEvent]) -> list[EventKind]:
    return [e.kind for e in events]


# --- seq --------------------------------------------------------------------------------


def test_seq_rises_by_one_per_event_of_every_kind() -> None:
    b = book(seq=41)
    events = [
        *send(b, ALICE, ROSE, 0),
        *send(b, ALICE, ROSE, 100),
        *send(b, ALICE, CORGI, 200),  # streak_end, then the gift
        *send(b, BOB, ROSE, 300),
        *b.expire_streaks(300 + WINDOW_MS),
        *send(b, BOB, TIKTOK, 10_000),
        *b.end(11_000),
    ]
    assert [e.seq for e in events] == list(range(42, 42 + len(events)))
    assert b.seq == 41 + len(events)
    assert kinds(events).count(EventKind.STREAK_END) == 3
    assert events[-1].kind is EventKind.ROOM_ENDED
    assert all(e.room == RoomId(7) for e in events)


# --- streaks ----------------------------------------------------------------------------


def test_same_streakable_gift_within_the_window_continues_the_streak() -> None:
    b = book()
    sends = [(0, 1), (1000, 5), (1000 + WINDOW_MS, 2)]  # the last exactly one window later
    views = []
    for at_ms, count in sends:
        (event,) = send(b, ALICE, ROSE, at_ms, count)
        views.append(event.streak)
    assert views == [
        StreakView(1, 1, False),
        StreakView(1, 6, False),
        StreakView(1, 8, False),
    ]


def test_a_gap_longer_than_the_window_ends_the_streak_and_starts_a_new_one() -> None:
    b = book()
    send(b, ALICE, ROSE, 0)
    send(b, ALICE, ROSE, 1000)
    end, gift = send(b, ALICE, ROSE, 1001 + WINDOW_MS)
    assert end.kind is EventKind.STREAK_END
    assert end.streak == StreakView(1, 2, True)
    assert (end.sender, end.gift) == (ALICE, ROSE)
    assert gift.kind is EventKind.GIFT
    assert gift.streak == StreakView(gift.seq, 1, False)
    assert end.seq + 1 == gift.seq == 4


def test_a_different_gift_ends_the_streak_first() -> None:
    b = book()
    send(b, ALICE, ROSE, 0)
    send(b, ALICE, ROSE, 500)
    end, gift = send(b, ALICE, TIKTOK, 600)
    assert (end.kind, end.streak, end.gift) == (EventKind.STREAK_END, StreakView(1, 2, True), ROSE)
    assert (gift.kind, gift.gift, gift.streak) == (EventKind.GIFT, TIKTOK, StreakView(4, 1, False))
    assert b.streaks[ALICE].gift == TIKTOK


def test_a_gift_that_is_not_streakable_ends_the_streak_and_has_none() -> None:
    b = book()
    send(b, ALICE, ROSE, 0)
    end, gift = send(b, ALICE, CORGI, 100)
    assert end.kind is EventKind.STREAK_END
    assert gift.streak is None
    assert ALICE not in b.streaks
    (again,) = send(b, ALICE, CORGI, 200)
    assert again.streak is None


def test_streaks_are_per_sender() -> None:
    b = book()
    (a,) = send(b, ALICE, ROSE, 0)
    (c,) = send(b, BOB, ROSE, 10)
    assert a.streak == StreakView(1, 1, False)
    assert c.streak == StreakView(2, 1, False)
    end, _ = send(b, ALICE, TIKTOK, 20)  # ends alice's streak only
    assert end.sender == ALICE
    (more,) = send(b, BOB, ROSE, 30)
    assert more.streak == StreakView(2, 2, False)


@pytest.mark.parametrize(
    ("now_ms", "ended"),
    [(1000, 0), (1000 + WINDOW_MS - 1, 0), (1000 + WINDOW_MS, 1), (10**9, 1)],
)
def test_expire_streaks_after_the_window(now_ms: int, ended: int) -> None:
    b = book()
    send(b, ALICE, ROSE, 0)
    send(b, ALICE, ROSE, 1000)
    assert b.expired_streaks(now_ms) is bool(ended)
    events = b.expire_streaks(now_ms)
    assert len(events) == ended
    if ended:
        assert events[0].streak == StreakView(1, 2, True)
        assert events[0].seq == 3
        assert events[0].at_ms == now_ms
        assert b.streaks == {}
        assert b.expire_streaks(now_ms) == []


def test_expire_streaks_ends_the_oldest_first_and_keeps_the_fresh_ones() -> None:
    b = book()
    send(b, BOB, ROSE, 100)
    send(b, ALICE, ROSE, 0)
    send(b, CAROL, ROSE, 2000)
    events = b.expire_streaks(100 + WINDOW_MS)
    assert [e.sender for e in events] == [ALICE, BOB]
    assert [e.seq for e in events] == [4, 5]
    assert set(b.streaks) == {CAROL}


def test_end_ends_open_streaks_then_the_room_and_only_once() -> None:
    b = book()
    send(b, BOB, ROSE, 0)
    send(b, ALICE, TIKTOK, 10)
    send(b, CAROL, CORGI, 20)
    events = b.end(500)
    assert kinds(events) == [EventKind.STREAK_END, EventKind.STREAK_END, EventKind.ROOM_ENDED]
    assert [e.sender for e in events[:2]] == [BOB, ALICE]  # by streak id
    assert [e.seq for e in events] == [4, 5, 6]
    assert events[-1].sender is None and events[-1].gift is None
    assert b.status is RoomStatus.ENDED
    assert b.streaks == {}
    assert b.end(600) == []
    assert b.seq == 6


def test_end_of_a_quiet_room_is_one_event() -> None:
    b = book(seq=9)
    (ended,) = b.end(1)
    assert (ended.kind, ended.seq, ended.at_ms) == (EventKind.ROOM_ENDED, 10, 1)


# --- first gifts, refusals ----------------------------------------------------------------


def test_first_only_on_a_senders_first_gift() -> None:
    b = book()
    firsts = [
        send(b, ALICE, ROSE, 0)[-1].first,
        send(b, ALICE, ROSE, 1)[-1].first,
        send(b, BOB, CORGI, 2)[-1].first,
        send(b, ALICE, CORGI, 3)[-1].first,
        send(b, BOB, CORGI, 4)[-1].first,
    ]
    assert firsts == [True, False, True, False, False]


@pytest.mark.parametrize(
    ("status", "sender", "code"),
    [
        (RoomStatus.LIVE, ALICE, None),
        (RoomStatus.LIVE, HOST, Code.SELF_GIFT),
        (RoomStatus.ENDED, ALICE, Code.ROOM_NOT_LIVE),
        (RoomStatus.ENDED, HOST, Code.ROOM_NOT_LIVE),
    ],
)
def test_refuse_gift(status: RoomStatus, sender: UserId, code: Code | None) -> None:
    b = book()
    b.status = status
    refusal = b.refuse_gift(sender)
    assert (refusal.code if refusal else None) is code
    if refusal is not None:
        assert refusal.message


@pytest.mark.parametrize("sender", [HOST, ALICE])
def test_apply_gift_on_a_refused_gift_is_a_bug(sender: UserId) -> None:
    b = book()
    if sender == ALICE:
        b.end(0)
    with pytest.raises(RuntimeError):
        b.apply_gift(sender, "x", ROSE, 1, 1, 0)


# --- the leaderboard and the goal -----------------------------------------------------------


def test_top_by_coins_most_first_ties_to_who_gave_first() -> None:
    b = book()
    send(b, BOB, ROSE, 0, count=10)  # bob 10
    send(b, ALICE, ROSE, 1, count=10)  # alice 10, after bob
    send(b, CAROL, CORGI, 2)  # carol 299
    assert b.top(10) == [(CAROL, "carol", 299), (BOB, "bob", 10), (ALICE, "alice", 10)]
    send(b, ALICE, ROSE, 3)  # alice 11 overtakes bob
    assert b.top(10) == [(CAROL, "carol", 299), (ALICE, "alice", 11), (BOB, "bob", 10)]
    assert b.top(2) == [(CAROL, "carol", 299), (ALICE, "alice", 11)]
    assert b.top(1) == [(CAROL, "carol", 299)]
    assert b.top(0) == []


def test_top_size_caps_a_big_room() -> None:
    b = book()
    for n in range(1, 31):
        uid = UserId(100 + n)
        b.apply_gift(uid, f"u{n}", ROSE, n % 7 + 1, 1, n)
    top = b.top(10)
    assert len(top) == 10
    coins = [c for _, _, c in top]
    assert coins == sorted(coins, reverse=True)
    # Ties keep the order of first gifts: among the 7-coin gifters, the earliest first.
    sevens = [uid for uid, _, c in top if c == 7]
    assert sevens == sorted(sevens)


def test_goal_progress_counts_coins_since_it_was_set() -> None:
    b = book()
    send(b, ALICE, ROSE, 0, count=5)
    goal = b.set_goal("new mic", 1000)
    assert (goal.title, goal.coins, goal.progress) == ("new mic", 1000, 0)
    send(b, ALICE, ROSE, 1, count=5)
    send(b, BOB, CORGI, 2, count=2)
    assert b.goal is goal
    assert goal.progress == 5 + 2 * 299
    b.set_goal("new chair", 50)
    assert b.goal is not None and b.goal.progress == 0


def test_a_room_without_a_goal_has_none() -> None:
    b = book()
    send(b, ALICE, ROSE, 0)
    assert b.goal is None


# --- the gift event and its shoutout -------------------------------------------------------


def test_gift_event_carries_what_it_cost_and_gave() -> None:
    b = book()
    (event,) = b.apply_gift(ALICE, "alice", CORGI, 3, 1794, 1234)
    assert (event.coins, event.diamonds, event.count, event.at_ms) == (897, 1794, 3, 1234)
    assert (event.sender, event.sender_name, event.gift) == (ALICE, "alice", CORGI)


@pytest.mark.parametrize(
    ("sends", "shoutout"),
    [
        ([(CORGI, 1)], "alice sent Corgi"),
        ([(CORGI, 5)], "alice sent Corgi x5"),
        ([(ROSE, 1)], "alice sent Rose"),
        ([(ROSE, 5)], "alice sent Rose x5"),
        ([(ROSE, 1)] * 12, "alice sent Rose x12"),  # a streak shows its total
        ([(PERFUME, 2), (PERFUME, 3)], "alice sent Perfume x5"),
    ],
)
def test_shoutout(sends: list[tuple[Gift, int]], shoutout: str) -> None:
    b = book()
    events: list[RoomEvent] = []
    for n, (gift, count) in enumerate(sends):
        events = send(b, ALICE, gift, n * 100, count)
    assert events[-1].shoutout == shoutout


def test_shoutout_of_streak_end_and_room_ended() -> None:
    b = book()
    for n in range(3):
        send(b, ALICE, ROSE, n)
    end, ended = b.end(10)
    assert end.shoutout == "alice sent Rose x3"
    assert ended.shoutout == ""
