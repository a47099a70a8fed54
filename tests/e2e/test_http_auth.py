"""Bearer auth on every authenticated HTTP call: missing, forged or expired tokens get 401."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from server.domain.money import UserId
from server.domain.tokens import issue_user_token
from tests.e2e.http_helpers import (
    ADULT_BIRTHDATE,
    assert_error,
    describe,
    new_key,
    ok_json,
    on_shared_server,
    shared_server,
    unique_name,
)
from tests.support.client import Api, User
from tests.support.live import ADMIN_TOKEN

TEST_SECRET = b"test-secret"  # `tests.support.live.test_settings` signs with this


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    async with shared_server(tmp_path_factory) as api:
        yield api


@dataclass(frozen=True)
class Scene:
    """A host with a live room, and another user: what the forged tokens are made from."""

    host: User
    other: User
    room: dict[str, Any]


async def make_scene(api: Api) -> Scene:
    host = await api.signup(unique_name("host"), ADULT_BIRTHDATE)
    other = await api.signup(unique_name("other"), ADULT_BIRTHDATE)
    return Scene(host, other, await api.go_live(host))


# Every authenticated call of the contract's HTTP table (and the `/api/me/token` extension),
# each with a body the server would accept from the room's host.
AUTHENTICATED_CALLS: list[tuple[str, str, Any, bool]] = [
    # (method, path with {room}, JSON body, needs an Idempotency-Key)
    ("GET", "/api/me", None, False),
    ("POST", "/api/me/token", None, False),
    ("POST", "/api/wallet/recharge", {"package_id": "coins_65"}, True),
    ("GET", "/api/wallet/transactions", None, False),
    ("GET", "/api/wallet/transactions?limit=5", None, False),
    ("POST", "/api/rooms", {"title": "another live"}, False),
    ("PUT", "/api/rooms/{room}/goal", {"title": "new mic", "coins": 100}, False),
    ("POST", "/api/rooms/{room}/overlay_token", None, False),
    ("POST", "/api/rooms/{room}/end", None, False),
]


async def call_all(api: Api, scene: Scene, headers: dict[str, str]) -> list[tuple[str, Any]]:
    """Make every authenticated call with `headers`; returns (call, response) pairs."""
    answers = []
    for method, path, body, keyed in AUTHENTICATED_CALLS:
        sent = dict(headers)
        if keyed:
            sent["Idempotency-Key"] = new_key()
        url = path.format(room=scene.room["id"])
        answers.append((f"{method} {url}", await api.call(method, url, json=body, headers=sent)))
    return answers


def _with_part(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


def _flip_last(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def _now() -> int:
    return int(time.time())


Credentials = Callable[[Scene], dict[str, str]]

BAD_CREDENTIALS: list[Any] = [
    pytest.param(lambda s: {}, id="no-authorization-header"),
    pytest.param(lambda s: {"Authorization": ""}, id="empty-header"),
    pytest.param(lambda s: {"Authorization": "Bearer"}, id="bearer-without-token"),
    pytest.param(lambda s: {"Authorization": "Bearer u..."}, id="token-of-empty-fields"),
    pytest.param(lambda s: {"Authorization": s.host.token}, id="token-without-scheme"),
    pytest.param(lambda s: {"Authorization": f"Basic {s.host.token}"}, id="basic-scheme"),
    pytest.param(lambda s: {"Authorization": f"Token {s.host.token}"}, id="token-scheme"),
    pytest.param(lambda s: {"Authorization": "Bearer not-a-token"}, id="garbage"),
    pytest.param(
        lambda s: {"Authorization": f"Bearer {_flip_last(s.host.token)}"},
        id="tampered-signature",
    ),
    pytest.param(
        lambda s: {"Authorization": f"Bearer {s.host.token[:-4]}"}, id="truncated-signature"
    ),
    pytest.param(
        lambda s: {"Authorization": f"Bearer {_with_part(s.host.token, 3, '')}"},
        id="no-signature",
    ),
    pytest.param(
        lambda s: {"Authorization": f"Bearer {_with_part(s.host.token, 1, str(s.other.id))}"},
        id="user-id-changed",
    ),
    pytest.param(
        lambda s: {"Authorization": f"Bearer {_with_part(s.host.token, 2, str(2**40))}"},
        id="expiry-pushed-out",
    ),
    pytest.param(
        lambda s: {
            "Authorization": "Bearer "
            + issue_user_token(b"another-secret", UserId(s.host.id), _now(), 3600)
        },
        id="signed-with-another-secret",
    ),
    pytest.param(
        lambda s: {
            "Authorization": "Bearer "
            + issue_user_token(TEST_SECRET, UserId(s.host.id), _now() - 7200, 3600)
        },
        id="expired-an-hour-ago",
    ),
    pytest.param(
        lambda s: {
            "Authorization": "Bearer "
            + issue_user_token(TEST_SECRET, UserId(s.host.id), _now() - 60, 59)
        },
        id="expired-a-second-ago",
    ),
    pytest.param(
        lambda s: {
            "Authorization": "Bearer " + issue_user_token(TEST_SECRET, UserId(10**9), _now(), 3600)
        },
        id="well-signed-for-an-unknown-user",
    ),
    pytest.param(
        lambda s: {"Authorization": f"Bearer {s.room['overlay_token']}"},
        id="the-room-overlay-token",
    ),
    pytest.param(lambda s: {"Authorization": f"Bearer {ADMIN_TOKEN}"}, id="the-admin-token"),
]


@on_shared_server
@pytest.mark.parametrize("credentials", BAD_CREDENTIALS)
async def test_every_authenticated_call_refuses_a_missing_forged_or_expired_token_with_401(
    shared_api: Api, credentials: Credentials
) -> None:
    api = shared_api
    scene = await make_scene(api)
    answers = await call_all(api, scene, credentials(scene))
    wrong = [describe(r) for _, r in answers if r.status_code != 401]
    assert not wrong, "expected 401 unauthorized:\n" + "\n".join(wrong)
    for _, r in answers:
        assert_error(r, 401, "unauthorized")
    # Nothing happened: no coins, the room still live with no goal.
    assert (await api.me(scene.host))["coins"] == 0
    room = ok_json(await api.call("GET", f"/api/rooms/{scene.room['id']}", scene.host.token))
    assert room["status"] == "live"
    assert room.get("goal") is None


@on_shared_server
async def test_a_valid_token_passes_every_authenticated_call(shared_api: Api) -> None:
    """The control for the table above: the same calls with the host's token get past auth."""
    scene = await make_scene(shared_api)
    answers = await call_all(shared_api, scene, {"Authorization": f"Bearer {scene.host.token}"})
    refused = [describe(r) for _, r in answers if r.status_code == 401]
    assert not refused
    statuses = {call: r.status_code for call, r in answers}
    # A second live room is refused for another reason; everything else succeeds.
    assert statuses.pop("POST /api/rooms") == 403
    assert all(200 <= status < 300 for status in statuses.values()), answers


@on_shared_server
async def test_the_bearer_scheme_is_case_insensitive(shared_api: Api) -> None:
    user = await shared_api.signup(unique_name(), ADULT_BIRTHDATE)
    for scheme in ("bearer", "BEARER", "Bearer"):
        r = await shared_api.call(
            "GET", "/api/me", headers={"Authorization": f"{scheme} {user.token}"}
        )
        assert ok_json(r)["id"] == user.id, scheme


@pytest.mark.parametrize("settings_overrides", [{"user_token_ttl_s": 1}])
async def test_a_token_stops_working_when_its_lifetime_is_over(api: Api) -> None:
    user = await api.signup(unique_name(), ADULT_BIRTHDATE)
    ok_json(await api.call("GET", "/api/me", user.token))
    await asyncio.sleep(2.1)
    assert_error(await api.call("GET", "/api/me", user.token), 401, "unauthorized")
    assert_error(await api.call("POST", "/api/me/token", user.token), 401, "unauthorized")
    # Signing up again is the way back in (the name stays taken by the old account).
    r = await api.call("POST", "/api/users", json={"name": user.name, "birthdate": "1990-01-01"})
    assert_error(r, 409, "name_taken")
