"""`GET /api/admin/stats`: the process's own figures, for operators and the soak script.

An extension of the wire contract (admin-only, like the audit): resident memory, open file
descriptors, live asyncio tasks, WebSocket connections and the gift writer's queue. Each figure
is read when asked (from `/proc/self` on Linux); nothing here keeps history or grows.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.web.http_util import json_response
from server.web.routes import _admin, rt


def rss_bytes() -> int | None:
    """Resident set size now (not the peak), or None where /proc is not available."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            resident_pages = int(f.read().split()[1])
    except OSError:
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


async def admin_stats(request: Request) -> Response:
    denied = _admin(request)
    if denied is not None:
        return denied
    runtime = rt(request)
    hub = runtime.hub
    doc: dict[str, Any] = {
        "rss_bytes": rss_bytes(),
        "open_fds": open_fds(),
        "tasks": len(asyncio.all_tasks()),
        "ws_connections": sum(len(channel.conns) for channel in hub.rooms.values()),
        "rooms_open": len(hub.rooms),
        "gift_queue": runtime.gifts.queued(),
        "gift_batches": runtime.gifts.batches,
    }
    return json_response(doc)


STATS_ROUTES = [Route("/api/admin/stats", admin_stats, methods=["GET"])]
