"""Durable storage: the LedgerStore port (`base`) and its adapters, chosen by URL."""

from __future__ import annotations

from server.storage.base import LedgerStore


async def open_store(
    url: str, busy_timeout_ms: int = 5000, cache_mib: int = 64, checkpoint_pages: int = 10_000
) -> LedgerStore:
    """`sqlite:///path/to/file.db` (the embedded default); PostgreSQL arrives in a later issue."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from server.storage.sqlite import SqliteStore

        return await SqliteStore.open(url, busy_timeout_ms, cache_mib, checkpoint_pages)
    if scheme in ("postgres", "postgresql"):
        raise ValueError(
            "PostgreSQL storage is not built yet; use the embedded default (sqlite:///...)"
        )
    raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:///path")
