"""A worker process: its share of the simulated people, one asyncio loop, one pipe.

Spawned by the coordinator (`multiprocessing`, spawn) with a `WorkerPlan`. It signs its
people up over HTTP, buys senders their first coins, opens every socket, says `ready`, and
then follows the coordinator's commands, sending a `Tick` of figures every second:

    coordinator -> worker   "go"        gifting starts (senders, churn, drops)
                            "stop"      no new gifts: answer what is pending (bounded)
                            "finish"    the rooms are ending: read to `room_ended`, then stop
    worker -> coordinator   ("ready", sockets) ("tick", Tick) ("drained", Drained)
                            ("done", streams) ("failed", traceback)

A failure anywhere is sent as `failed` with its traceback: no worker dies quietly.
"""

from __future__ import annotations

import asyncio
import random
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from server.loadtest.clients import RoomClient, Shared, State
from server.loadtest.http import Api, HttpError
from server.loadtest.model import CatalogGift, GiftMix, Picker, TokenBucket
from server.loadtest.records import Ack, StreamRecord
from server.loadtest.scenario import Scenario
from server.loadtest.sender import Sender
from server.loadtest.stats import Tick

BIRTHDATE = "1990-01-01"  # every simulated person is an adult: under-18s cannot gift
SIGNUP_CONCURRENCY = 16
READY_TIMEOUT_S = 120.0
FINISH_TIMEOUT_S = 20.0


@dataclass(frozen=True, slots=True)
class Person:
    room: int
    sampled: bool
    sender: bool


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    index: int
    run_id: str
    base_url: str
    scenario: Scenario
    rooms: list[int]  # by popularity, biggest first
    room_weights: list[float]
    people: list[Person]
    overlays: list[tuple[int, str]]  # (room, overlay token)
    gifts: list[CatalogGift]
    packages: list[tuple[str, int]]


@dataclass(slots=True)
class Drained:
    acks: list[Ack] = field(default_factory=list)
    unresolved: list[tuple[int, int, str]] = field(default_factory=list)  # room, sender, id
    recharged: dict[int, int] = field(default_factory=dict)  # sender -> coins bought


def main(plan: WorkerPlan, conn: Connection) -> None:
    """The process's entry point."""
    try:
        asyncio.run(Worker(plan, conn).run())
    except BaseException:
        conn.send(("failed", f"worker {plan.index}:\n{traceback.format_exc()}"))
        raise
    finally:
        conn.close()


class Worker:
    def __init__(self, plan: WorkerPlan, conn: Connection) -> None:
        s = plan.scenario
        self.plan = plan
        self.conn = conn
        self.rng = random.Random(s.seed * 1000 + plan.index)
        ws_base = "ws://" + plan.base_url.removeprefix("http://")
        self.shared = Shared(ws_base, Tick(plan.index), self.rng, s.drop_per_min / 60)
        self.api = Api(plan.base_url)
        self.mix = GiftMix(
            plan.gifts, s.tap_share, s.large_share, s.streak_taps_max, s.large_gift_coins_max
        )
        self.picker = Picker(plan.room_weights)
        self.clients: list[RoomClient] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.commands: asyncio.Queue[str] = asyncio.Queue()
        self.names = 0

    def _name(self) -> str:
        self.names += 1
        return f"lt{self.plan.run_id}w{self.plan.index}n{self.names}"

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self.conn.fileno(), self._on_command)
        ticker = asyncio.create_task(self._ticks())
        await self._set_up()
        self.conn.send(("ready", self.shared.open_sockets))
        await self._expect("go")
        self.shared.running.set()
        senders = [c for c in self.clients if isinstance(c, Sender)]
        loops = [asyncio.create_task(s.send_loop()) for s in senders]
        churn = asyncio.create_task(self._churn())
        await self._expect("stop")
        churn.cancel()
        for s in senders:
            s.stop_sending.set()
        await asyncio.gather(*loops, return_exceptions=True)
        drained = Drained()
        for s, left in zip(
            senders, await asyncio.gather(*(s.drain() for s in senders)), strict=True
        ):
            drained.acks += s.acks
            drained.unresolved += [(s.room, s.user, rid) for rid in left]
            drained.recharged[s.user] = s.recharged
        self.conn.send(("drained", drained))
        await self._expect("finish")
        self.shared.finishing.set()
        pending = [t for t in self.tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=FINISH_TIMEOUT_S)
        for c in self.clients:
            c.close_now()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        ticker.cancel()
        self._send_tick()
        streams: list[StreamRecord] = [c.stream for c in self.clients if c.stream is not None]
        self.conn.send(("done", streams))

    def _on_command(self) -> None:
        while self.conn.poll():
            self.commands.put_nowait(self.conn.recv())

    async def _expect(self, command: str) -> None:
        got = await self.commands.get()
        if got != command:
            raise RuntimeError(f"expected the command {command!r}, got {got!r}")

    async def _ticks(self) -> None:
        self._cpu = time.process_time()
        self._at = time.monotonic()
        while True:
            await asyncio.sleep(1.0 - (time.monotonic() - self._at) % 1.0)
            self._send_tick()

    def _send_tick(self) -> None:
        now, cpu = time.monotonic(), time.process_time()
        tick = self.shared.tick
        tick.sockets = self.shared.open_sockets
        tick.cpu_s, tick.wall_s = cpu - self._cpu, max(1e-3, now - self._at)
        self._cpu, self._at = cpu, now
        self.conn.send(("tick", tick))
        self.shared.tick = Tick(self.plan.index)

    def _start(self, client: RoomClient) -> None:
        self.clients.append(client)
        task = asyncio.create_task(client.run())
        self.tasks.add(task)

    async def _set_up(self) -> None:
        s = self.plan.scenario
        gate = asyncio.Semaphore(SIGNUP_CONCURRENCY)

        async def person(p: Person) -> RoomClient:
            async with gate:
                user, token = await self.api.sign_up(self._name(), BIRTHDATE)
                self.shared.tick.signups += 1
                if not p.sender:
                    return RoomClient(
                        self.shared, p.room, token, f"viewer {user}", p.sampled, False
                    )
                sender = Sender(
                    self.shared,
                    self.api,
                    p.room,
                    user,
                    token,
                    self.plan.run_id,
                    self.mix,
                    self.plan.packages,
                    TokenBucket(s.gift_rate_per_s, s.gift_burst, time.monotonic()),
                    s.sender_pause_s,
                    s.tap_interval_ms / 1000,
                )
                await sender.recharge(0)
                return sender

        for client in await asyncio.gather(*(person(p) for p in self.plan.people)):
            self._start(client)
        for room, token in self.plan.overlays:
            self._start(RoomClient(self.shared, room, token, f"overlay {room}", True, True))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:  # many clients: polled, no one event
            if not any(c.state is State.NEW for c in self.clients):
                break
            await asyncio.sleep(0.05)

    async def _churn(self) -> None:
        """Each second, a share of the plain viewers leave and as many new people sign up
        and join a room drawn by popularity: the number of sockets stays the same."""
        per_s = self.plan.scenario.churn_per_min / 60
        if per_s <= 0:
            return
        while True:
            await asyncio.sleep(1.0)
            plain = [
                c
                for c in self.clients
                if not c.sampled and not isinstance(c, Sender) and c.state is State.OPEN
            ]
            expected = per_s * len(plain)
            leaving = int(expected) + (1 if self.rng.random() < expected % 1 else 0)
            for c in self.rng.sample(plain, min(leaving, len(plain))):
                c.close_now()
                self.clients.remove(c)
                self.tasks.add(asyncio.create_task(self._join()))

    async def _join(self) -> None:
        room = self.plan.rooms[self.picker.pick(self.rng)]
        try:
            user, token = await self.api.sign_up(self._name(), BIRTHDATE)
        except HttpError as exc:
            self.shared.tick.errors[f"signup_{exc.code or exc.status}"] += 1
            return
        self.shared.tick.signups += 1
        self._start(RoomClient(self.shared, room, token, f"viewer {user}", False, False))
