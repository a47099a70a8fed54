"""Token buckets for per-user gift rate limits. Time is a parameter (`now_ms`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """`rate_per_s` tokens a second, at most `burst` saved; one token per gift.

    Tokens are kept in thousandths so refilling stays in integers.
    """

    rate_per_s: int
    burst: int
    milli_tokens: int = -1
    updated_ms: int = 0

    def take(self, now_ms: int) -> int:
        """Take one token. Returns 0 when allowed, else the milliseconds until one is free."""
        if self.milli_tokens < 0:
            self.milli_tokens, self.updated_ms = self.burst * 1000, now_ms
        elapsed = max(0, now_ms - self.updated_ms)
        self.milli_tokens = min(self.burst * 1000, self.milli_tokens + elapsed * self.rate_per_s)
        # A wall clock may step back: time never runs backwards for the bucket, so a step
        # back cannot grant the burst again.
        self.updated_ms = max(self.updated_ms, now_ms)
        if self.milli_tokens >= 1000:
            self.milli_tokens -= 1000
            return 0
        missing = 1000 - self.milli_tokens
        return max(1, -(-missing // self.rate_per_s))

    def is_full(self, now_ms: int) -> bool:
        if self.milli_tokens < 0:
            return True
        elapsed = max(0, now_ms - self.updated_ms)
        return self.milli_tokens + elapsed * self.rate_per_s >= self.burst * 1000
