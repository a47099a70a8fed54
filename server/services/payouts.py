"""Creator payouts, two-phase: a request reserves diamonds; an operator settles it once.

Requesting moves the diamonds out of the spendable balance into the reserve (a pending
payout). Settling `paid` asks the payment provider to send the cash, then posts the reserve
out for good (or, if the provider declines, fails it); settling `failed` gives the diamonds
back as a `payout_reversed` entry. Every step is one ledger transaction and happens once.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from server.config import Settings
from server.domain.errors import Code, Refusal
from server.domain.payouts import PayoutStatus, check_request
from server.domain.timefmt import rfc3339
from server.services.clock import Clock
from server.services.payments import PaymentProvider
from server.services.users import Caller
from server.services.wallet import Answer, WalletService, request_hash
from server.storage.base import LedgerStore, PayoutRow

log = logging.getLogger("giftcast.payouts")
LIST_MAX = 100


def payout_doc(row: PayoutRow) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": row.id,
        "diamonds": row.diamonds,
        "cents": row.cents,
        "status": row.status.value,
        "created_at": rfc3339(row.created_ms),
    }
    if row.settled_ms is not None:
        doc["settled_at"] = rfc3339(row.settled_ms)
    return doc


class PayoutService:
    def __init__(
        self, settings: Settings, store: LedgerStore, provider: PaymentProvider, clock: Clock
    ) -> None:
        self.settings = settings
        self.store = store
        self.provider = provider
        self.clock = clock

    async def request(self, caller: Caller, key: str, body: Any, path: str) -> Answer | Refusal:
        fingerprint = request_hash("POST", path, body)
        earlier = await self.store.stored_response(caller.id, key)
        if earlier is not None:
            return WalletService.replay(
                earlier.request_hash, fingerprint, earlier.status, earlier.body
            )
        if not caller.adult:
            return Refusal(Code.AGE_RESTRICTED, "you must be 18 or older to cash out")
        requested = body.get("diamonds") if isinstance(body, dict) else None
        due = check_request(
            requested, self.settings.payout_minimum_diamonds, self.settings.cents_per_100_diamonds
        )
        if isinstance(due, Refusal):
            return due
        stored = await self.store.request_payout(
            caller.id,
            due,
            key,
            fingerprint,
            self.clock(),
            self.settings.payout_daily_cents_max,
            lambda row: (202, orjson.dumps(payout_doc(row))),
        )
        if isinstance(stored, Refusal):
            return stored
        return WalletService.replay(stored.request_hash, fingerprint, stored.status, stored.body)

    async def mine(self, caller: Caller) -> dict[str, Any]:
        return {"items": [payout_doc(r) for r in await self.store.payouts(caller.id, LIST_MAX)]}

    async def awaiting_review(self, older_than_ms: int | None) -> dict[str, Any]:
        """Pending payouts older than the review time: what an operator should settle."""
        age = self.settings.payout_review_ms if older_than_ms is None else older_than_ms
        rows = await self.store.pending_payouts(self.clock() - age, LIST_MAX)
        return {"items": [{**payout_doc(r), "user": r.user} for r in rows]}

    async def settle(self, payout: int, body: Any) -> dict[str, Any] | Refusal:
        outcome = body.get("outcome") if isinstance(body, dict) else None
        if outcome not in (PayoutStatus.PAID.value, PayoutStatus.FAILED.value):
            return Refusal(Code.INVALID, 'send {"outcome": "paid"} or {"outcome": "failed"}')
        if outcome == PayoutStatus.PAID.value:
            found = await self.store.get_payout(payout)
            if found is not None and found.status is PayoutStatus.PENDING:
                sent = await self.provider.payout(found.user, found.cents, payout)
                if not sent.approved:
                    log.warning("provider declined payout %s: %s", payout, sent.message)
                    outcome = PayoutStatus.FAILED.value
        settled = await self.store.settle_payout(payout, str(outcome), self.clock())
        if isinstance(settled, Refusal):
            return settled
        return payout_doc(settled)
