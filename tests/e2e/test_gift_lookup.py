"""`GET /api/gifts/{id}`: what became of a gift whose answer never arrived."""

from __future__ import annotations

import httpx

from tests.e2e.http_helpers import eventually
from tests.e2e.ws_helpers import stage, welcome
from tests.support.client import Api


async def test_a_viewer_drops_right_after_sending_and_learns_over_http_that_the_gift_went_through(
    api: Api,
) -> None:
    s = await stage(api, ["dropper"])
    viewer = s.viewers[0]
    async with api.room(s.id, viewer.token) as ws:
        await welcome(ws)
        answered = await ws.gift("seen/é 1", "doughnut")  # any characters an id may hold
        await ws.send({"type": "gift", "id": "lost-answer", "gift_id": "rose", "count": 3})
        # gone before the answer: the app never learns what happened on this socket

    async def ask(request_id: str) -> httpx.Response:
        return await api.call("GET", f"/api/gifts/{request_id}", viewer.token)

    r = await eventually(lambda: ask("lost-answer"), lambda r: r.status_code == 200)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["id"], doc["status"], doc["coins_spent"], doc["diamonds"]) == (
        "lost-answer",
        "accepted",
        3,
        3,
    )
    assert doc["coins"] == 330 - 30 - 3 and doc["seq"] > answered["seq"]
    assert doc["value"]["host_millicents"] == 1_500
    # The answer that did arrive reads the same over HTTP.
    seen = (await ask("seen%2F%C3%A9%201")).json()
    assert {k: seen[k] for k in ("seq", "coins", "coins_spent", "diamonds", "value")} == {
        k: answered[k] for k in ("seq", "coins", "coins_spent", "diamonds", "value")
    }
    assert (await api.me(viewer))["coins"] == 330 - 33  # charged once each


async def test_an_id_that_was_never_accepted_is_not_found_and_belongs_to_its_sender(
    api: Api,
) -> None:
    s = await stage(api, ["owner", "other"])
    owner, other = s.viewers
    async with api.room(s.id, owner.token) as ws:
        await welcome(ws)
        assert (await ws.gift("mine", "rose"))["type"] == "gift_ok"
        refused = await ws.gift("too-big", "universe")  # refused: not enough coins
        assert refused["code"] == "insufficient_coins"
    for token, request_id in [(other.token, "mine"), (owner.token, "too-big"), (owner.token, "x")]:
        r = await api.call("GET", f"/api/gifts/{request_id}", token)
        assert r.status_code == 404, r.text
        error = r.json()["error"]
        assert error["code"] == "not_found" and "took no coins" in error["message"]
    r = await api.call("GET", "/api/gifts/" + "x" * 65, owner.token)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid"
    r = await api.call("GET", "/api/gifts/mine")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
