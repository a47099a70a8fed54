"""What is not a contract call: unknown routes, wrong methods, `/healthz` and the two pages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.e2e.http_helpers import (
    ADULT_BIRTHDATE,
    CLIENT_DEMO,
    CONTRACT_CODES,
    assert_error,
    describe,
    new_key,
    on_shared_server,
    shared_server,
    unique_name,
)
from tests.support.client import Api

pytestmark = on_shared_server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    async with shared_server(tmp_path_factory) as shared:
        yield shared


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("GET", "/api"),
        ("GET", "/api/nope"),
        ("POST", "/api/nope"),
        ("GET", "/api/users/1"),
        ("GET", "/api/wallet"),
        ("GET", "/api/rooms/1/nope"),
        ("DELETE", "/api/rooms/1/goal/extra"),
        ("GET", "/api/admin"),
        ("GET", "/favicon.ico.nope"),
    ],
)
async def test_an_unknown_route_is_a_json_404_not_found(api: Api, method: str, path: str) -> None:
    assert_error(await api.call(method, path), 404, "not_found")


WRONG_METHODS = [
    ("GET", "/api/users"),
    ("DELETE", "/api/me"),
    ("PUT", "/api/me/token"),
    ("POST", "/api/catalog"),
    ("GET", "/api/wallet/recharge"),
    ("POST", "/api/wallet/transactions"),
    ("DELETE", "/api/rooms"),
    ("PATCH", "/api/rooms/1"),
    ("GET", "/api/rooms/1/end"),
    ("POST", "/api/rooms/1/leaderboard"),
    ("POST", "/api/rooms/1/goal"),
    ("DELETE", "/api/rooms/1/overlay_token"),  # GET reads it (an extension); POST rotates
    ("POST", "/api/admin/audit"),
    ("POST", "/healthz"),
]


@pytest.mark.parametrize(("method", "path"), WRONG_METHODS)
async def test_a_wrong_method_is_a_json_405(api: Api, method: str, path: str) -> None:
    # Any contract code will do: the contract names none for this case.
    assert_error(await api.call(method, path), 405, sorted(CONTRACT_CODES))


async def test_a_405_names_the_allowed_methods(api: Api) -> None:
    """RFC 9110 §15.5.6: a 405 answer carries an `Allow` header listing what is allowed."""
    missing = []
    for method, path in WRONG_METHODS:
        r = await api.call(method, path)
        assert r.status_code == 405, describe(r)
        allow = {m.strip().upper() for m in r.headers.get("allow", "").split(",") if m.strip()}
        if not allow or method in allow:
            missing.append(f"{method} {path}: Allow: {r.headers.get('allow')!r}")
    assert not missing, "405 without a proper Allow header:\n" + "\n".join(missing)


BODY_MAX = 16 * 1024  # the server's default `http_body_bytes_max`


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/users"),
        ("POST", "/api/wallet/recharge"),
        ("POST", "/api/rooms"),
        ("PUT", "/api/rooms/{room}/goal"),
    ],
)
async def test_every_call_with_a_body_refuses_one_over_16_kib_with_413(
    api: Api, method: str, path: str
) -> None:
    host = await api.signup(unique_name("host"), ADULT_BIRTHDATE)
    room = await api.go_live(host)
    body = b'{"title": "' + b"t" * BODY_MAX + b'"}'
    r = await api.call(
        method,
        path.format(room=room["id"]),
        host.token,
        content=body,
        headers={"Content-Type": "application/json", "Idempotency-Key": new_key()},
    )
    assert_error(r, 413, "invalid")


async def test_healthz_answers_ok_true(api: Api) -> None:
    r = await api.call("GET", "/healthz")
    assert r.status_code == 200, describe(r)
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"ok": True}


@pytest.mark.parametrize(
    ("path", "page"),
    [
        pytest.param("/", "index.html", id="demo-app"),
        pytest.param("/overlay?room=1&token=o.1.0.x", "overlay.html", id="overlay"),
    ],
)
async def test_the_pages_are_served_as_html(api: Api, path: str, page: str) -> None:
    r = await api.call("GET", path)
    if (CLIENT_DEMO / page).is_file():
        assert r.status_code == 200, describe(r)
        assert r.headers["content-type"].startswith("text/html"), dict(r.headers)
        assert r.text.strip()
    else:
        # The pages are being written: until client_demo/ has them, the answer is a JSON 404.
        assert_error(r, 404, "not_found")
