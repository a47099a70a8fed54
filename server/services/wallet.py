"""Wallet: recharges through the payment provider, and the caller's transaction history.

Idempotency: a recharge carries an `Idempotency-Key`. The first successful answer is stored
with the ledger transfer in one transaction; a repeat with the same body gets that answer
again with no second effect, a repeat with another body `idempotency_conflict`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from server.config import Settings
from server.domain.catalog import Catalog
from server.domain.errors import Code, Refusal
from server.domain.limits import (
    KEEP,
    Limit,
    check_daily_coins,
    check_time_zone,
    day_of,
    day_start_ms,
    left_today,
)
from server.domain.money import Rates, TransferId
from server.domain.pricing import gift_value
from server.domain.timefmt import rfc3339
from server.services.clock import Clock
from server.services.payments import PaymentProvider
from server.services.users import Caller
from server.storage.base import LedgerStore, TransactionRow

log = logging.getLogger("giftcast.wallet")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


def request_hash(method: str, path: str, body: Any) -> str:
    canonical = orjson.dumps([method, path, body], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def check_idempotency_key(key: str | None, chars_max: int) -> str | Refusal:
    if key is None:
        return Refusal(
            Code.IDEMPOTENCY_KEY_REQUIRED,
            "this call moves money: send an Idempotency-Key header (1-64 printable ASCII"
            " characters, new for each distinct request)",
        )
    if not 1 <= len(key) <= chars_max or not all(" " <= ch <= "~" for ch in key):
        return Refusal(
            Code.INVALID, f"Idempotency-Key must be 1-{chars_max} printable ASCII characters"
        )
    return key


class WalletService:
    def __init__(
        self,
        settings: Settings,
        store: LedgerStore,
        catalog: Catalog,
        provider: PaymentProvider,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.store = store
        self.catalog = catalog
        self.rates = Rates(settings.diamonds_per_coin, settings.cents_per_100_diamonds)
        self.provider = provider
        self.clock = clock

    async def recharge(self, caller: Caller, key: str, body: Any, path: str) -> Answer | Refusal:
        fingerprint = request_hash("POST", path, body)
        earlier = await self.store.stored_response(caller.id, key)
        if earlier is not None:
            return self.replay(earlier.request_hash, fingerprint, earlier.status, earlier.body)
        package_id = body.get("package_id") if isinstance(body, dict) else None
        if not isinstance(package_id, str):
            return Refusal(Code.INVALID, 'send {"package_id": "<id from GET /api/catalog>"}')
        package = self.catalog.package(package_id)
        if package is None:
            return Refusal(Code.UNKNOWN_PACKAGE, f"there is no package {package_id[:64]!r}")
        if not caller.adult:
            return Refusal(Code.AGE_RESTRICTED, "you must be 18 or older to buy coins")
        coins, _ = await self.store.balances(caller.id)
        if coins + package.coins > self.settings.coins_balance_max:
            return Refusal(Code.INVALID, "this recharge would exceed the largest wallet allowed")
        charge = await self.provider.charge(caller.id, package, key)
        if not charge.approved:
            return Refusal(Code.INVALID, f"the payment was declined: {charge.message}")

        def respond(transfer: TransferId, coins_after: int) -> tuple[int, bytes]:
            return 200, orjson.dumps(
                {
                    "transaction_id": transfer,
                    "coins": coins_after,
                    "package_id": package.id,
                    "coins_added": package.coins,
                    "price_cents": package.price_cents,
                    "currency": package.currency,
                    "provider_reference": charge.reference,
                }
            )

        stored = await self.store.recharge(
            caller.id, package, charge.reference, key, fingerprint, self.clock(), respond
        )
        return self.replay(stored.request_hash, fingerprint, stored.status, stored.body)

    async def refund(self, caller: Caller, key: str, body: Any, path: str) -> Answer | Refusal:
        """Refund one of the caller's recharges (see LedgerStore.refund for the rules)."""
        fingerprint = request_hash("POST", path, body)
        earlier = await self.store.stored_response(caller.id, key)
        if earlier is not None:
            return self.replay(earlier.request_hash, fingerprint, earlier.status, earlier.body)
        recharge = body.get("transaction_id") if isinstance(body, dict) else None
        if type(recharge) is not int or not 1 <= recharge <= 2**62:
            return Refusal(
                Code.INVALID, 'send {"transaction_id": <the id of one of your recharges>}'
            )

        def respond(transfer: TransferId, coins_after: int) -> tuple[int, bytes]:
            return 200, orjson.dumps(
                {"coins": coins_after, "transaction_id": transfer, "refund_of": recharge}
            )

        result = await self.store.refund(
            caller.id,
            TransferId(recharge),
            key,
            fingerprint,
            self.clock(),
            self.settings.refund_window_ms,
            respond,
        )
        if isinstance(result, Refusal):
            return result
        if result.provider_ref is not None:
            # The coins are gone from the ledger for good; now the money goes back. A provider
            # failure here is logged loudly for the operator (the ledger is already right).
            outcome = await self.provider.refund(
                caller.id, result.provider_ref, result.price_cents, key
            )
            if not outcome.approved:
                log.error("provider refused refund of recharge %s: %s", recharge, outcome.message)
        stored = result.response
        return self.replay(stored.request_hash, fingerprint, stored.status, stored.body)

    @staticmethod
    def replay(stored_hash: str, fingerprint: str, status: int, body: bytes) -> Answer | Refusal:
        if stored_hash != fingerprint:
            return Refusal(
                Code.IDEMPOTENCY_CONFLICT,
                "this Idempotency-Key was already used for a different request; use a new key",
            )
        return Answer(status, body)

    async def limits(self, caller: Caller) -> dict[str, Any]:
        """The caller's daily spending limit as it stands now, with what is left today."""
        now_ms = self.clock()
        limit = (await self.store.limit(caller.id)).at(now_ms)
        return await self._limit_doc(caller, limit, now_ms)

    async def set_limit(self, caller: Caller, body: Any) -> dict[str, Any] | Refusal:
        """Lower at once; raise or remove after the cooling-off period (then `pending`)."""
        if not isinstance(body, dict) or "daily_coins" not in body:
            return Refusal(Code.INVALID, 'send {"daily_coins": <coins per day> or null for none}')
        requested = check_daily_coins(body["daily_coins"])
        if isinstance(requested, str):
            return Refusal(Code.INVALID, requested)
        zone = check_time_zone(body.get("time_zone", KEEP))
        if isinstance(zone, Refusal):
            return zone
        now_ms = self.clock()
        limit = await self.store.change_limit(
            caller.id,
            lambda current: current.change(
                requested, now_ms, self.settings.spending_limit_cooling_off_ms, zone
            ),
        )
        return await self._limit_doc(caller, limit, now_ms)

    async def _limit_doc(self, caller: Caller, limit: Limit, now_ms: int) -> dict[str, Any]:
        day = day_of(now_ms, limit.time_zone)
        ends_ms = day_start_ms(day + 1, limit.time_zone)
        spent = await self.store.spent_between(
            caller.id, day_start_ms(day, limit.time_zone), ends_ms
        )
        pending = limit.pending
        return {
            "daily_coins": limit.daily_coins,
            "time_zone": limit.time_zone or "UTC",
            "pending": (
                {
                    "daily_coins": pending.daily_coins,
                    "time_zone": pending.time_zone or "UTC",
                    "effective_at": rfc3339(pending.effective_ms),
                }
                if pending is not None
                else None
            ),
            "spent_today": spent,
            "left_today": left_today(limit.daily_coins, spent),
            "day_ends_at": rfc3339(ends_ms),
        }

    async def transactions(self, caller: Caller, limit: int, before: int | None) -> dict[str, Any]:
        rows = await self.store.transactions(caller.id, limit, before)
        more = len(rows) > limit
        rows = rows[:limit]
        return {
            "items": [
                transaction_doc(
                    r, self.rates, self.catalog.currency, self.settings.refund_window_ms
                )
                for r in rows
            ],
            "next": rows[-1].id if more and rows else None,
        }


def transaction_doc(
    row: TransactionRow, rates: Rates, currency: str, refund_window_ms: int
) -> dict[str, Any]:
    """One history item. A recharge says until when it may be refunded (`refundable_until`)
    and, once refunded, by which transfer (`refunded_by`); a refund names its `refund_of`."""
    doc: dict[str, Any] = {
        "id": row.id,
        "kind": row.kind,
        "coins": row.coins,
        "diamonds": row.diamonds,
        "at": rfc3339(row.at_ms),
    }
    if row.coins_after is not None:
        doc["coins_after"] = row.coins_after
    if row.diamonds_after is not None:
        doc["diamonds_after"] = row.diamonds_after
    if row.kind in ("recharge", "refund"):
        doc.update(package_id=row.package_id, price_cents=row.price_cents, currency=row.currency)
        if row.cost_millicents is not None:  # a refund: the cost basis its coins took along
            doc["coins_cost_millicents"] = row.cost_millicents
        if row.kind == "recharge":
            doc["refundable_until"] = rfc3339(row.at_ms + refund_window_ms)
            doc["refunded_by"] = row.refunded_by
        else:
            doc["refund_of"] = row.refund_of
    else:
        doc.update(room=row.room, gift_id=row.gift_id, count=row.count)
        if row.counterparty is not None:
            key = "to" if row.kind == "gift_sent" else "from"
            doc[key] = {"id": row.counterparty, "name": row.counterparty_name}
        if row.cost_millicents is not None and row.gift_diamonds is not None:
            doc["value"] = gift_value(row.cost_millicents, row.gift_diamonds, rates).doc(currency)
    return doc
