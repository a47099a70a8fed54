"""The running server's parts, wired together once at start-up and torn down at shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from server.config import Settings
from server.domain.catalog import Catalog, parse_catalog
from server.domain.money import Rates
from server.pubsub import open_broker
from server.services.clock import Clock, system_clock
from server.services.gifting import GiftService
from server.services.payments import PaymentProvider, SandboxProvider
from server.services.payouts import PayoutService
from server.services.reports import ReportService
from server.services.room_books import RoomBooks
from server.services.rooms import RoomService
from server.services.users import UserService, load_secret
from server.services.wallet import WalletService
from server.storage import open_store
from server.storage.base import LedgerStore
from server.web.conn import CLOSE_GOING_AWAY
from server.web.hub import Hub

log = logging.getLogger("giftcast")


def load_catalog(path: str) -> Catalog:
    if path:
        text = Path(path).read_text(encoding="utf-8")
    else:
        text = resources.files("server").joinpath("data/catalog.json").read_text("utf-8")
    return parse_catalog(json.loads(text))


@dataclass
class Runtime:
    settings: Settings
    store: LedgerStore
    catalog: Catalog
    rates: Rates
    hub: Hub
    users: UserService
    gifts: GiftService
    rooms: RoomService
    wallet: WalletService
    payouts: PayoutService
    reports: ReportService
    clock: Clock
    stopping: bool = False

    @classmethod
    async def start(
        cls,
        settings: Settings,
        clock: Clock = system_clock,
        provider: PaymentProvider | None = None,
    ) -> Runtime:
        catalog = load_catalog(settings.catalog)
        secret = load_secret(settings)
        store = await open_store(
            settings.db_url,
            settings.db_busy_timeout_ms,
            settings.db_cache_mib,
            settings.db_checkpoint_pages,
        )
        hub = Hub(settings, open_broker(settings.broker))
        await hub.start()
        gifts = GiftService(
            settings, store, catalog, clock, RoomBooks(settings, store, hub.publish)
        )
        gifts.start()
        users = UserService(settings, store, secret, clock)
        rooms = RoomService(settings, store, gifts, secret, clock, hub.viewer_count)
        payments = provider or SandboxProvider()
        wallet = WalletService(settings, store, catalog, payments, clock)
        payouts = PayoutService(settings, store, payments, clock)
        return cls(
            settings=settings,
            store=store,
            catalog=catalog,
            rates=gifts.rates,
            hub=hub,
            users=users,
            gifts=gifts,
            rooms=rooms,
            wallet=wallet,
            payouts=payouts,
            reports=ReportService(settings, store, clock),
            clock=clock,
        )

    async def drain(self) -> None:
        """Stop taking work, answer every in-flight gift, close every socket with 1001."""
        if self.stopping:
            return
        self.stopping = True
        await self.gifts.drain_and_stop()
        conns = self.hub.close_all(CLOSE_GOING_AWAY, "the server is shutting down")
        closing = [asyncio.ensure_future(c.wait_closed()) for c in conns]
        if closing:
            _, late = await asyncio.wait(closing, timeout=self.settings.close_grace_ms / 1000)
            for waiter in late:
                waiter.cancel()
            for conn in conns:  # still paused after the grace: close now, dropping the rest
                conn.abort(CLOSE_GOING_AWAY, "the server is shutting down")
        log.info("drained: %d sockets closed with 1001", len(conns))

    async def close(self) -> None:
        await self.drain()
        await self.hub.broker.close()
        await self.store.close()
