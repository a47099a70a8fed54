"""Fan-out between processes: the Broker port (`base`) and its adapters, chosen by URL."""

from __future__ import annotations

from server.pubsub.base import Broker


def open_broker(url: str) -> Broker:
    """Empty or `memory://`: one process serves everything. Redis arrives in a later issue."""
    scheme = url.split(":", 1)[0].lower() if url else "memory"
    if scheme == "memory":
        from server.pubsub.memory import MemoryBroker

        return MemoryBroker()
    if scheme in ("redis", "rediss"):
        raise ValueError("Redis fan-out is not built yet; leave --broker unset for one process")
    raise ValueError(f"unsupported broker URL scheme {scheme!r}")
