"""SQLite's tuning settings take effect: the WAL file stays within twice `db_checkpoint_pages`."""

from __future__ import annotations

from pathlib import Path

from server.storage.sqlite import SqliteStore
from tests.storage.test_contract import Planner, adult, go_live, send, topup

PAGE_BYTES = 4096


async def wal_pages_after_batches(tmp_path: Path, checkpoint_pages: int) -> list[int]:
    """Write 60 batches of 100 gifts (10 rooms, 100 senders); the WAL's size after each."""
    path = tmp_path / f"ledger-{checkpoint_pages}.db"
    store = await SqliteStore.open(f"sqlite:///{path}", 5000, 8, checkpoint_pages)
    try:
        hosts = [await adult(store, f"h{i}") for i in range(10)]
        rooms = [await go_live(store, host) for host in hosts]
        senders = [await adult(store, f"s{i}") for i in range(100)]
        for sender in senders:
            await topup(store, sender)
        planner = Planner(store)
        sizes = []
        for b in range(60):
            commands = [send(senders[k], rooms[k % 10], f"r{b}.{k}") for k in range(100)]
            result = await planner.write(*commands)
            assert len(result.outcomes) == 100
            sizes.append(Path(f"{path}-wal").stat().st_size // PAGE_BYTES)
        return sizes
    finally:
        await store.close()


async def test_the_wal_stays_within_twice_the_checkpoint_pages(tmp_path: Path) -> None:
    small = await wal_pages_after_batches(tmp_path, 100)
    assert max(small) <= 2 * 100, small
    # The same writes with a large setting let the WAL grow well past that: the setting is
    # what bounds it, not the workload.
    large = await wal_pages_after_batches(tmp_path, 10_000)
    assert max(large) > 1000, large
