"""The payment-provider port, and the sandbox provider used by default.

A real processor plugs in here without touching the ledger: `charge` is called before the
ledger credits coins, with the caller's idempotency key, so a retried recharge is one charge
at the provider too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from server.domain.catalog import Package
from server.domain.money import UserId


@dataclass(frozen=True, slots=True)
class Charge:
    approved: bool
    reference: str  # the provider's id for the charge, kept on the ledger transfer
    message: str = ""


class PaymentProvider(Protocol):
    name: str

    async def charge(self, user: UserId, package: Package, idempotency_key: str) -> Charge: ...

    async def refund(self, user: UserId, reference: str, amount_cents: int, key: str) -> Charge:
        """Give a charge's money back (called after the ledger took the coins back)."""
        ...

    async def payout(self, user: UserId, cents: int, payout_id: int) -> Charge:
        """Send a creator's cash (called when an operator approves a pending payout)."""
        ...


class SandboxProvider:
    """Approves every charge; the reference is derived from (user, key), so retries match."""

    name = "sandbox"

    async def charge(self, user: UserId, package: Package, idempotency_key: str) -> Charge:
        digest = hashlib.sha256(f"{user}:{idempotency_key}:{package.id}".encode()).hexdigest()
        return Charge(approved=True, reference=f"sandbox_{digest[:24]}")

    async def refund(self, user: UserId, reference: str, amount_cents: int, key: str) -> Charge:
        digest = hashlib.sha256(f"{user}:{key}:{reference}".encode()).hexdigest()
        return Charge(approved=True, reference=f"sandbox_refund_{digest[:24]}")

    async def payout(self, user: UserId, cents: int, payout_id: int) -> Charge:
        return Charge(approved=True, reference=f"sandbox_payout_{payout_id}")
