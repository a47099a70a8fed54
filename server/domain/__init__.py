"""The pure core: money, catalog, ledger postings, rooms, streaks, limits. No I/O here."""
