"""`GET /api/admin/stats` (an extension): the process's own figures, admin only."""

from __future__ import annotations

from tests.support.client import Api
from tests.support.live import ADMIN_TOKEN


async def test_stats_are_admin_only_and_count_what_is_open(api: Api) -> None:
    refused = await api.call("GET", "/api/admin/stats")
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "unauthorized"
    wrong = await api.call("GET", "/api/admin/stats", "not-the-token")
    assert wrong.status_code == 401, wrong.text

    host, viewer = await api.signup(), await api.signup()
    await api.recharge(viewer, "coins_65")
    room = await api.go_live(host)
    idle = (await api.call("GET", "/api/admin/stats", ADMIN_TOKEN)).json()
    assert idle["ws_connections"] == 0 and idle["gift_queue"] == 0
    async with api.room(room["id"], viewer.token) as ws:
        await ws.recv_type("welcome")
        assert (await ws.gift("one"))["type"] == "gift_ok"
        busy = (await api.call("GET", "/api/admin/stats", ADMIN_TOKEN)).json()
    assert busy["ws_connections"] == 1 and busy["rooms_open"] == 1
    assert busy["tasks"] > idle["tasks"]  # the socket's reader and writer
    assert busy["gift_batches"] == idle["gift_batches"] + 1
    # The server runs in this test's process: the socket adds descriptors to it.
    assert busy["open_fds"] >= idle["open_fds"] + 1
    assert busy["rss_bytes"] > 1_000_000
    assert all(isinstance(v, int) and not isinstance(v, bool) for v in busy.values()), busy
