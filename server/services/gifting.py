"""Gifting: the checks before a gift, and the single writer that commits gifts in groups.

Every numbered room event is made by one task, the writer, in commit order:

    intake (any socket)                    writer task
    -------------------                    -----------
    well-formed (protocol)                 take up to `gift_batch_max` waiting commands
    rate limit -> duplicate? -> answer     load the rooms' books
    rules (gift, room, age, self)          store.write_batch: dup check, guarded debit,
    enqueue, answer when committed           room events, all in one transaction
                                           publish committed events, answer every command
                                           between batches: streak expiry, top/goal updates

A failed batch (the store raised) answers each of its commands `unavailable` and drops the
in-memory books of its rooms, which reload from the ledger: nothing half-done survives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from server.config import Settings
from server.domain.catalog import Catalog
from server.domain.errors import Code, Refusal
from server.domain.money import Rates, RoomId, UserId
from server.domain.ratelimit import TokenBucket
from server.domain.rooms import RoomStatus
from server.protocol.messages import GiftRequest
from server.services.clock import Clock
from server.services.room_books import RoomBooks
from server.services.users import Caller
from server.storage.base import (
    BatchResult,
    Command,
    GiftAccepted,
    GiftCommand,
    GiftOk,
    GiftRefused,
    LedgerStore,
    Outcome,
    RoomAction,
    RoomCommand,
    RoomDone,
    StoreError,
)

log = logging.getLogger("giftcast.gifting")


GiftAnswer = GiftAccepted | Refusal
Reply = Callable[[GiftAnswer], None]
OnOutcome = Callable[[Outcome], None]


class GiftService:
    def __init__(
        self,
        settings: Settings,
        store: LedgerStore,
        catalog: Catalog,
        clock: Clock,
        books: RoomBooks,
    ) -> None:
        self.settings = settings
        self.store = store
        self.catalog = catalog
        self.clock = clock
        self.books = books
        self.rates = Rates(settings.diamonds_per_coin, settings.cents_per_100_diamonds)
        self._buckets: OrderedDict[int, TokenBucket] = OrderedDict()
        self._accepted: OrderedDict[tuple[UserId, str], GiftOk] = OrderedDict()
        self._expiry_queued: set[RoomId] = set()
        self._queue: deque[tuple[Command, OnOutcome]] = deque()
        self._checks: set[asyncio.Task[None]] = set()  # duplicate checks still to answer
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._accepting = True
        self.batches = 0

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gift-writer")
        self._task.add_done_callback(_loud)

    async def drain_and_stop(self) -> None:
        """Refuse new work, commit or fail everything queued, then stop the writer."""
        self._accepting = False
        self._wake.set()
        if self._task is not None:
            await self._task
        while self._checks:
            await asyncio.gather(*list(self._checks), return_exceptions=True)

    def queued(self) -> int:
        """Commands waiting for the writer now (bounded by `gift_queue_max` for gifts)."""
        return len(self._queue)

    # --- intake -------------------------------------------------------------------------

    def _rate_limit(self, caller: Caller, now_ms: int) -> int:
        bucket = self._buckets.get(caller.id)
        if bucket is None:
            bucket = TokenBucket(self.settings.gift_rate_per_s, self.settings.gift_burst)
            self._buckets[caller.id] = bucket
            if len(self._buckets) > self.settings.user_cache_max:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(caller.id)
        return bucket.take(now_ms)

    def _rules(self, caller: Caller, request: GiftRequest, room: RoomId) -> Refusal | GiftCommand:
        gift = self.catalog.gift(request.gift_id)
        book = self.books.get(room)
        if book is None or book.status is not RoomStatus.LIVE:
            return Refusal(Code.ROOM_NOT_LIVE, "this live has ended; gifts are no longer accepted")
        if gift is None:
            return Refusal(Code.UNKNOWN_GIFT, f"there is no gift {request.gift_id[:64]!r}")
        if caller.id == book.host:
            return Refusal(Code.SELF_GIFT, "a host cannot send gifts in their own room")
        if not caller.adult:
            return Refusal(Code.AGE_RESTRICTED, "you must be 18 or older to send gifts")
        coins = gift.coins * request.count
        return GiftCommand(
            sender=caller.id,
            sender_name=caller.name,
            request_id=request.id,
            room=room,
            host=book.host,
            gift=gift,
            count=request.count,
            coins=coins,
            diamonds=self.rates.diamonds_for(coins),
            at_ms=self.clock(),
        )

    def submit(self, caller: Caller, request: GiftRequest, room: RoomId, reply: Reply) -> None:
        """Check and queue a gift; `reply` is called exactly once, when it is committed or
        refused (synchronously from the writer, so an answer is never behind a loop hop).

        The checks run in the contract's order: a known accepted id first (so a resend
        always gets its first answer), then the rate limit, then the rules.
        """
        known = self._accepted.get((caller.id, request.id))
        if known is not None:
            # A resend of a recently accepted id: its first answer, before the rate limit.
            reply(GiftAccepted(known, duplicate=True))
            return
        wait_ms = self._rate_limit(caller, self.clock())
        if wait_ms:
            refusal = Refusal(
                Code.RATE_LIMITED,
                f"too many gifts: at most {self.settings.gift_rate_per_s} a second"
                f" (bursts of {self.settings.gift_burst}); retry in {wait_ms} ms",
                retry_after_ms=wait_ms,
            )
            self._answer_after_dup_check(caller, request, refusal, reply)
        elif room in self.books:
            self._check_and_queue(caller, request, room, reply)
        else:
            # The room's book is not in memory (first gift since start, or a failed batch
            # dropped it): load it, then check as usual.
            async def load_then_check() -> None:
                try:
                    await self.books.book(room)
                except StoreError:
                    busy = Refusal(Code.UNAVAILABLE, "storage is busy; resend this gift")
                    self._answer_after_dup_check(caller, request, busy, reply)
                    return
                self._check_and_queue(caller, request, room, reply)

            self._track(load_then_check())

    def _track(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)
        task.add_done_callback(_loud)

    def _check_and_queue(
        self, caller: Caller, request: GiftRequest, room: RoomId, reply: Reply
    ) -> None:
        checked = self._rules(caller, request, room)
        if isinstance(checked, Refusal):
            self._answer_after_dup_check(caller, request, checked, reply)
            return
        if not self._accepting or len(self._queue) >= self.settings.gift_queue_max:
            # Shed load at once: `unavailable` is not an outcome (the client resends the same
            # id), and a recent accepted id was answered from memory above. A ledger lookup
            # per refusal, as for the rules' refusals, made overload worse: with 10,000
            # gifts/s offered, refusing took the time accepting needed (1,300 accepted a
            # second, against 4,900 when not overloaded).
            reply(Refusal(Code.UNAVAILABLE, "the server is busy or stopping; resend this gift"))
            return

        def answer(outcome: Outcome) -> None:
            if isinstance(outcome, GiftAccepted):
                self._remember(checked, outcome.ok)
            reply(_gift_answer(outcome))

        self._queue.append((checked, answer))
        self._wake.set()

    def _remember(self, command: GiftCommand, ok: GiftOk) -> None:
        """Keep recent accepted ids in memory so their resends skip the queue and the limiter."""
        key = (command.sender, command.request_id)
        self._accepted[key] = ok
        self._accepted.move_to_end(key)
        if len(self._accepted) > self.settings.accepted_ids_cached_max:
            self._accepted.popitem(last=False)

    def _answer_after_dup_check(
        self, caller: Caller, request: GiftRequest, refusal: Refusal, reply: Reply
    ) -> None:
        async def check() -> None:
            earlier: GiftOk | None = None
            try:
                earlier = await self.store.find_gift(caller.id, request.id)
            except Exception as exc:  # a closing or failing store: the refusal still answers
                log.warning("duplicate check failed: %s", exc)
            finally:
                reply(GiftAccepted(earlier, True) if earlier else refusal)

        self._track(check())

    async def room_command(self, command: RoomCommand) -> RoomDone | Refusal:
        """Queue a room command (end, goal) for the writer; answers once committed.

        `RoomDone(changed=False)`: the room had already ended (an END is then already done)."""
        if not self._accepting:
            return Refusal(Code.UNAVAILABLE, "the server is shutting down; try again shortly")
        await self.books.book(command.room)
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append((command, done.set_result))
        self._wake.set()
        outcome = await done
        if isinstance(outcome, GiftRefused):
            return outcome.refusal
        if not isinstance(outcome, RoomDone):
            raise RuntimeError(f"a room command got a gift outcome: {outcome!r}")
        return outcome

    # --- the writer ---------------------------------------------------------------------

    async def _run(self) -> None:
        tick_s = max(0.01, min(self.settings.streak_window_ms, 100) / 1000)
        while self._accepting or self._queue:
            if not self._queue and self._accepting:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=tick_s)
            self._queue_streak_expiry()
            if self._queue:
                take = min(len(self._queue), self.settings.gift_batch_max)
                batch = [self._queue.popleft() for _ in range(take)]
                await self._commit(batch)
            self._room_updates()

    async def _commit(self, batch: list[tuple[Command, OnOutcome]]) -> None:
        rooms = {command.room for command, _ in batch}
        missing: set[RoomId] = set()
        try:
            for room in rooms:
                await self.books.book(room)
            # A room with no book in memory is unknown or has ended (ended books are let go).
            missing = {room for room in rooms if room not in self.books}
            runnable = [(c, f) for c, f in batch if c.room not in missing]
            for command, on_outcome in batch:
                if command.room in missing:
                    on_outcome(_not_live(command))
            result = await self.store.write_batch([c for c, _ in runnable], self.books)
        except (StoreError, Exception) as exc:
            # Nothing was written: forget what the books planned and answer every command.
            if not isinstance(exc, StoreError):
                log.exception("gift batch failed")
            else:
                log.warning("gift batch failed: %s", exc)
            for room in rooms:
                self.books.drop(room)
                self._expiry_queued.discard(room)
            refusal = GiftRefused(Refusal(Code.UNAVAILABLE, "could not record this now; resend it"))
            answered = {id(c) for c, _ in batch if c.room in missing}
            for command, on_outcome in batch:
                if id(command) not in answered:
                    on_outcome(refusal)
            return
        self.batches += 1
        self._after_commit(result, runnable)

    def _after_commit(
        self, result: BatchResult, batch: Sequence[tuple[Command, OnOutcome]]
    ) -> None:
        rooms = {command.room for command, _ in batch}
        self.books.committed(result, rooms, self.clock())
        for command, _ in batch:
            if isinstance(command, RoomCommand) and command.action is RoomAction.EXPIRE_STREAKS:
                self._expiry_queued.discard(command.room)
        for (_, on_outcome), outcome in zip(batch, result.outcomes, strict=True):
            on_outcome(outcome)
        for room in rooms:
            if room not in self.books:
                self._expiry_queued.discard(room)

    def _queue_streak_expiry(self) -> None:
        now_ms = self.clock()
        for room, book in self.books.items():
            if room in self._expiry_queued:
                continue
            if book.streaks and book.expired_streaks(now_ms):
                self._expiry_queued.add(room)
                command = RoomCommand(room, RoomAction.EXPIRE_STREAKS, now_ms)
                self._queue.append((command, _ignore))

    def _room_updates(self) -> None:
        for room in self.books.send_due_updates(self.clock()):
            self._track(self._prune(room))

    async def _prune(self, room: RoomId) -> None:
        """Trim a room's replayable history. Housekeeping: when storage is busy or full it is
        put off to the room's next update, never a dead task; tracked, so a drain awaits it."""
        try:
            await self.store.prune_events(room, self.settings.room_events_kept_min)
        except StoreError as exc:
            log.warning("pruning room %d's history put off: %s", room, exc)
            self.books.prune_put_off(room)


def _not_live(command: Command) -> Outcome:
    if isinstance(command, RoomCommand):
        return RoomDone(changed=False)
    return GiftRefused(
        Refusal(Code.ROOM_NOT_LIVE, "this live has ended; gifts are no longer accepted")
    )


def _gift_answer(outcome: Outcome) -> GiftAnswer:
    if isinstance(outcome, GiftAccepted):
        return outcome
    if isinstance(outcome, GiftRefused):
        return outcome.refusal
    raise RuntimeError(f"a gift got a room outcome: {outcome!r}")


def _ignore(outcome: Outcome) -> None:
    pass


def _loud(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.critical("background task %s died", task.get_name(), exc_info=exc)


__all__ = ["GiftAnswer", "GiftOk", "GiftService"]
