"""A simulated sender: a viewer socket that also sends gifts, by the contract's rules.

- Request ids are `<run>-<user>-<n>`, unique per sender; every one is kept (`pending`) until
  answered and resent, with the same id, after a reconnect: the server answers a repeat of
  an accepted id with its first `gift_ok` (`duplicate`), never a second debit.
- `rate_limited` and `unavailable` are not outcomes: wait (`retry_after_ms`) and resend.
  `insufficient_coins`: buy coins over HTTP (with an Idempotency-Key), then resend. Any other
  error is the gift's outcome: refused, not in the ledger.
- The sender's own `TokenBucket` (10/s, burst 20 by default) keeps it inside the contract.
- After `stop_sending`, `drain()` waits for every pending id to be answered (bounded); what
  is still unanswered is reported as unresolved: the ledger may or may not hold it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass

import orjson

from server.loadtest.clients import RoomClient, Shared
from server.loadtest.http import Api, HttpError
from server.loadtest.model import GiftMix, Send, TokenBucket
from server.loadtest.records import Ack

RETRY_CODES = frozenset({"rate_limited", "unavailable"})
DRAIN_S = 20.0


@dataclass(slots=True)
class Pending:
    gift_id: str
    count: int
    coins: int
    sent_at: float  # monotonic, of the latest send of this id


class Sender(RoomClient):
    def __init__(
        self,
        shared: Shared,
        api: Api,
        room: int,
        user: int,
        token: str,
        run_id: str,
        mix: GiftMix,
        packages: list[tuple[str, int]],
        bucket: TokenBucket,
        pause_s: float,
        tap_interval_s: float,
    ) -> None:
        super().__init__(shared, room, token, f"sender {user}", sampled=False, overlay=False)
        self.api = api
        self.user = user
        self.run_id = run_id
        self.mix = mix
        self.packages = sorted(packages, key=lambda p: p[1])
        self.bucket = bucket
        self.pause_s = pause_s
        self.tap_interval_s = tap_interval_s
        self.coins = 0
        self.recharged = 0
        self.pending: dict[str, Pending] = {}
        self.acks: list[Ack] = []
        self.numbers = itertools.count(1)
        self.recharges = itertools.count(1)
        self.stop_sending = asyncio.Event()
        self.answered = asyncio.Event()
        self.chores: set[asyncio.Future[None]] = set()

    async def recharge(self, needed: int) -> None:
        """Buy the smallest package covering `needed` (at least the 1,000-coin kind)."""
        target = max(needed, 1000)
        package = next((p for p in self.packages if p[1] >= target), self.packages[-1])
        key = f"{self.run_id}-{self.user}-r{next(self.recharges)}"
        self.coins = await self.api.recharge(self.token, package[0], key)
        self.recharged += package[1]
        self.shared.tick.recharges += 1

    async def on_open(self) -> None:
        for request_id in sorted(self.pending, key=lambda r: int(r.rsplit("-", 1)[1])):
            await self._send(request_id)

    async def _send(self, request_id: str) -> None:
        p = self.pending.get(request_id)
        if p is None or self.ws is None:
            return  # answered meanwhile, or not connected: resent after the reconnect
        p.sent_at = time.monotonic()
        doc = {"type": "gift", "id": request_id, "gift_id": p.gift_id, "count": p.count}
        try:
            await self.ws.send(orjson.dumps(doc).decode())
        except Exception:  # a dead socket: the read loop sees it and resumes
            return
        self.shared.tick.gifts_sent += 1

    def on_frame(self, frame: bytes) -> None:
        if frame.startswith(b'{"type":"gift_ok"') or frame.startswith(b'{"type":"error"'):
            self.shared.tick.frames += 1
            self.on_answer(orjson.loads(frame))
            return
        super().on_frame(frame)

    def on_answer(self, doc: dict[str, object]) -> None:
        request_id = str(doc.get("id", ""))
        p = self.pending.get(request_id)
        if p is None:
            return  # a second answer to an id already settled (sent twice around a drop)
        if doc["type"] == "gift_ok":
            del self.pending[request_id]
            self.shared.tick.gifts_acked += 1
            self.shared.tick.ack_ms.add((time.monotonic() - p.sent_at) * 1000)
            self.coins = int(str(doc["coins"]))
            self.acks.append(
                (
                    self.room,
                    self.user,
                    request_id,
                    int(str(doc["seq"])),
                    p.gift_id,
                    p.count,
                    int(str(doc["coins_spent"])),
                    int(str(doc["diamonds"])),
                )
            )
        else:
            code = str(doc.get("code", "error"))
            self.count_error(code)
            if code in RETRY_CODES:
                delay_ms = doc.get("retry_after_ms")
                delay = int(delay_ms) / 1000 if isinstance(delay_ms, int) else 0.2
                asyncio.get_running_loop().call_later(
                    delay, lambda: asyncio.ensure_future(self._send(request_id))
                )
                return
            if code == "insufficient_coins":
                task = asyncio.ensure_future(self._recharge_and_resend(request_id, p.coins))
                self.chores.add(task)
                task.add_done_callback(self.chores.discard)
                return
            del self.pending[request_id]  # refused: its outcome, not in the ledger
        if not self.pending:
            self.answered.set()

    async def _recharge_and_resend(self, request_id: str, needed: int) -> None:
        try:
            await self.recharge(needed)
        except HttpError as exc:
            self.count_error(f"recharge_{exc.code or exc.status}")
            await asyncio.sleep(1.0)
        await self._send(request_id)

    async def send_loop(self) -> None:
        """Sends from the mix while the run is gifting; each tap paced by the bucket."""
        rng = self.shared.rng
        await self.shared.running.wait()
        await asyncio.sleep(rng.uniform(0, self.pause_s))  # not all senders at once
        while not self.stop_sending.is_set() and not self.leave.is_set():
            send = self.mix.next_send(rng)
            for tap in range(send.taps):
                if self.stop_sending.is_set():
                    return
                if tap:
                    await asyncio.sleep(self.tap_interval_s)
                await self._one(send)
            pause = rng.expovariate(1 / self.pause_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_sending.wait(), pause)

    async def _one(self, send: Send) -> None:
        delay = self.bucket.delay_s(time.monotonic())
        if delay:
            await asyncio.sleep(delay)
        cost = send.gift.coins * send.count
        if self.coins < cost:
            try:
                await self.recharge(cost)
            except HttpError as exc:
                self.count_error(f"recharge_{exc.code or exc.status}")
                return
        request_id = f"{self.run_id}-{self.user}-{next(self.numbers)}"
        self.pending[request_id] = Pending(send.gift.id, send.count, cost, time.monotonic())
        self.answered.clear()
        self.coins -= cost
        await self._send(request_id)

    async def drain(self) -> list[str]:
        """Wait (bounded) for every pending id to be answered; the ids still unanswered."""
        if self.pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.answered.wait(), DRAIN_S)
        return sorted(self.pending)
