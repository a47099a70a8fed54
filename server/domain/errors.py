"""Error codes of the wire contract, and the HTTP status each maps to.

Expected refusals are values (`Refusal`), never exceptions: a service returns one and the web
layer renders it. Exceptions in the domain mean a bug ("cannot happen").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Code(StrEnum):
    INVALID = "invalid"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    NAME_TAKEN = "name_taken"
    INSUFFICIENT_COINS = "insufficient_coins"
    INSUFFICIENT_DIAMONDS = "insufficient_diamonds"
    UNKNOWN_GIFT = "unknown_gift"
    UNKNOWN_PACKAGE = "unknown_package"
    ROOM_NOT_LIVE = "room_not_live"
    SELF_GIFT = "self_gift"
    AGE_RESTRICTED = "age_restricted"
    RATE_LIMITED = "rate_limited"
    SPENDING_LIMIT = "spending_limit"
    BELOW_MINIMUM = "below_minimum"
    REFUND_WINDOW_CLOSED = "refund_window_closed"
    COINS_ALREADY_SPENT = "coins_already_spent"
    ALREADY_REFUNDED = "already_refunded"
    ALREADY_SETTLED = "already_settled"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    IDEMPOTENCY_KEY_REQUIRED = "idempotency_key_required"
    UNAVAILABLE = "unavailable"
    PAYOUT_LIMIT = "payout_limit"  # extension: today's payouts would pass the daily maximum


HTTP_STATUS: dict[Code, int] = {
    Code.INVALID: 400,
    Code.IDEMPOTENCY_KEY_REQUIRED: 400,
    Code.UNAUTHORIZED: 401,
    Code.FORBIDDEN: 403,
    Code.AGE_RESTRICTED: 403,
    Code.SELF_GIFT: 403,
    Code.NOT_FOUND: 404,
    Code.UNKNOWN_GIFT: 404,
    Code.NAME_TAKEN: 409,
    Code.IDEMPOTENCY_CONFLICT: 409,
    Code.ALREADY_REFUNDED: 409,
    Code.ALREADY_SETTLED: 409,
    Code.ROOM_NOT_LIVE: 409,
    Code.INSUFFICIENT_COINS: 422,
    Code.INSUFFICIENT_DIAMONDS: 422,
    Code.BELOW_MINIMUM: 422,
    Code.REFUND_WINDOW_CLOSED: 422,
    Code.COINS_ALREADY_SPENT: 422,
    Code.SPENDING_LIMIT: 422,
    Code.UNKNOWN_PACKAGE: 422,
    Code.PAYOUT_LIMIT: 422,
    Code.RATE_LIMITED: 429,
    Code.UNAVAILABLE: 503,
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request the rules refuse: a code from the contract and words a developer can act on."""

    code: Code
    message: str
    retry_after_ms: int | None = None

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]
