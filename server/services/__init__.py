"""Use cases: wire the pure domain to the storage and fan-out ports."""
