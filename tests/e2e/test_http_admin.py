"""`GET /api/admin/audit`: off without an admin token, 401 with a wrong one, else the ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.http_helpers import (
    ADULT_BIRTHDATE,
    assert_error,
    ok_json,
    on_shared_server,
    send_gifts,
    shared_server,
    unique_name,
)
from tests.support.client import Api
from tests.support.live import ADMIN_TOKEN, LiveServer


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    async with shared_server(tmp_path_factory) as api:
        yield api


@pytest.mark.parametrize("settings_overrides", [{"admin_token": ""}])
@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-header"),
        pytest.param(f"Bearer {ADMIN_TOKEN}", id="the-usual-admin-token"),
        pytest.param("Bearer anything", id="any-token"),
    ],
)
async def test_admin_calls_are_off_with_403_when_the_server_has_no_admin_token(
    live: LiveServer, authorization: str | None
) -> None:
    # Not the `api` fixture: it audits through this very call when the test ends.
    api = Api(live.url)
    try:
        headers = {"Authorization": authorization} if authorization else {}
        r = await api.call("GET", "/api/admin/audit", headers=headers)
        assert_error(r, 403, "forbidden")
    finally:
        await api.close()


@on_shared_server
@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-header"),
        pytest.param("Bearer wrong", id="wrong-token"),
        pytest.param(f"Bearer {ADMIN_TOKEN}x", id="admin-token-plus-a-char"),
        pytest.param(f"Bearer {ADMIN_TOKEN[:-1]}", id="admin-token-minus-a-char"),
        pytest.param(f"Bearer {ADMIN_TOKEN.upper()}", id="admin-token-in-capitals"),
        pytest.param(f"Basic {ADMIN_TOKEN}", id="basic-scheme"),
        pytest.param(ADMIN_TOKEN, id="no-scheme"),
        pytest.param("user", id="a-user-token"),
    ],
)
async def test_the_audit_refuses_anything_but_the_admin_token_with_401(
    shared_api: Api, authorization: str | None
) -> None:
    if authorization == "user":
        user = await shared_api.signup(unique_name(), ADULT_BIRTHDATE)
        authorization = f"Bearer {user.token}"
    headers = {"Authorization": authorization} if authorization else {}
    r = await shared_api.call("GET", "/api/admin/audit", headers=headers)
    assert_error(r, 401, "unauthorized")


async def audit(api: Api) -> dict[str, Any]:
    return ok_json(await api.call("GET", "/api/admin/audit", ADMIN_TOKEN))


async def test_a_fresh_ledger_is_balanced_with_nothing_issued(api: Api) -> None:
    report = await audit(api)
    assert report["balanced"] is True
    assert report["totals"]["coin"]["issued"] == 0
    assert report["totals"]["diamond"]["issued"] == 0


async def test_the_audit_totals_match_what_was_recharged_and_gifted(api: Api) -> None:
    host = await api.signup(unique_name("host"), ADULT_BIRTHDATE)
    small = await api.signup(unique_name("small"), ADULT_BIRTHDATE)
    large = await api.signup(unique_name("large"), ADULT_BIRTHDATE)
    await api.recharge(small, "coins_65")
    await api.recharge(large, "coins_330")
    await api.recharge(large, "coins_65")
    room = await api.go_live(host)
    await send_gifts(api, room["id"], small, [("doughnut", 1), ("finger_heart", 1)])
    await send_gifts(api, room["id"], large, [("hand_hearts", 1), ("rose", 7)])

    report = await audit(api)
    assert report["balanced"] is True, report
    recharged, gifted = 65 + 330 + 65, 30 + 5 + 100 + 7
    coin, diamond = report["totals"]["coin"], report["totals"]["diamond"]
    assert coin["issued"] == recharged
    assert coin["spent"] == gifted
    assert coin["held_by_users"] == recharged - gifted
    assert diamond["issued"] == gifted  # diamonds_per_coin is 1
    assert diamond["held_by_users"] == gifted
    assert (await api.me(host))["diamonds"] == gifted
