"""`POST /api/wallet/recharge` (with its Idempotency-Key) and `GET /api/wallet/transactions`.

Everything here is per user, so the module shares one server; each test signs up its own users.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.e2e.http_helpers import (
    ADULT_BIRTHDATE,
    assert_error,
    assert_has_keys,
    assert_recent,
    coins_of,
    describe,
    funded_viewer,
    is_int,
    new_key,
    ok_json,
    on_shared_server,
    parse_rfc3339_utc,
    recharge_raw,
    send_gifts,
    shared_server,
    unique_name,
    years_ago,
)
from tests.support.client import Api, User

pytestmark = on_shared_server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    async with shared_server(tmp_path_factory) as shared:
        yield shared


async def adult(api: Api) -> User:
    return await api.signup(unique_name(), ADULT_BIRTHDATE)


async def recharge_with_raw_key(api: Api, user: User, key: bytes) -> httpx.Response:
    """A recharge whose Idempotency-Key goes on the wire as exactly these bytes."""
    return await api.http.request(
        "POST",
        "/api/wallet/recharge",
        content=b'{"package_id": "coins_65"}',
        headers=[
            (b"Authorization", f"Bearer {user.token}".encode()),
            (b"Content-Type", b"application/json"),
            (b"Idempotency-Key", key),
        ],
    )


# --- recharge ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("package_id", "coins"),
    [
        pytest.param("coins_65", 65, id="65-coins"),
        pytest.param("coins_330", 330, id="330-coins"),
        pytest.param("coins_1321", 1321, id="1321-coins"),
        pytest.param("coins_6607", 6607, id="6607-coins"),
    ],
)
async def test_a_recharge_credits_the_package_and_answers_the_balance_after(
    api: Api, package_id: str, coins: int
) -> None:
    user = await adult(api)
    first = ok_json(await recharge_raw(api, user, {"package_id": package_id}, new_key()))
    assert_has_keys(first, {"transaction_id", "coins"}, "a recharge answer")
    assert is_int(first["transaction_id"]) and is_int(first["coins"])
    assert first["coins"] == coins
    second = ok_json(await recharge_raw(api, user, {"package_id": package_id}, new_key()))
    assert second["coins"] == 2 * coins
    assert second["transaction_id"] != first["transaction_id"]
    assert await coins_of(api, user) == 2 * coins


async def test_a_recharge_without_an_idempotency_key_is_refused(api: Api) -> None:
    user = await adult(api)
    r = await recharge_raw(api, user, {"package_id": "coins_65"}, key=None)
    assert_error(r, 400, "idempotency_key_required")
    assert await coins_of(api, user) == 0


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(b"k" * 65, id="65-chars"),
        pytest.param(b"k" * 1000, id="1000-chars"),
        pytest.param(b"\x01abc", id="control-char"),
        pytest.param(b"a\tb", id="tab"),
        pytest.param(b"abc\x7f", id="delete-char"),
        pytest.param("clé".encode(), id="utf8-non-ascii"),
        pytest.param("clé".encode("latin-1"), id="latin1-non-ascii"),
    ],
)
async def test_an_idempotency_key_that_is_not_1_to_64_printable_ascii_is_invalid(
    api: Api, key: bytes
) -> None:
    user = await adult(api)
    assert_error(await recharge_with_raw_key(api, user, key), 400, "invalid")
    assert await coins_of(api, user) == 0


async def test_an_empty_idempotency_key_is_refused(api: Api) -> None:
    user = await adult(api)
    r = await recharge_with_raw_key(api, user, b"")
    assert_error(r, 400, ("invalid", "idempotency_key_required"))
    assert await coins_of(api, user) == 0


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("k", id="1-char"),
        pytest.param("k" * 64, id="64-chars"),
        pytest.param("order 42 / try #1", id="spaces-and-punctuation"),
        pytest.param("!~{}[]<>\"'`|\\^", id="symbols"),
    ],
)
async def test_an_idempotency_key_of_1_to_64_printable_ascii_is_accepted(
    api: Api, key: str
) -> None:
    user = await adult(api)
    ok_json(await recharge_with_raw_key(api, user, key.encode()))
    assert await coins_of(api, user) == 65


async def test_the_same_key_and_body_answer_the_same_again_with_no_second_credit(
    api: Api,
) -> None:
    user = await adult(api)
    key = new_key()
    first = await recharge_raw(api, user, {"package_id": "coins_330"}, key)
    again = await recharge_raw(api, user, {"package_id": "coins_330"}, key)
    assert first.status_code == again.status_code == 200, describe(again)
    assert again.json() == first.json()
    assert await coins_of(api, user) == 330
    items = ok_json(await api.call("GET", "/api/wallet/transactions", user.token))["items"]
    assert [item["kind"] for item in items] == ["recharge"]


async def test_a_replay_answers_the_first_response_even_after_the_balance_moved(
    api: Api,
) -> None:
    user = await adult(api)
    key = new_key()
    first = ok_json(await recharge_raw(api, user, {"package_id": "coins_330"}, key))
    await api.recharge(user, "coins_65")  # another key: the balance is now 395
    replay = ok_json(await recharge_raw(api, user, {"package_id": "coins_330"}, key))
    assert replay == first and replay["coins"] == 330
    assert await coins_of(api, user) == 395


async def test_the_same_key_with_another_body_is_an_idempotency_conflict(api: Api) -> None:
    user = await adult(api)
    key = new_key()
    first = ok_json(await recharge_raw(api, user, {"package_id": "coins_65"}, key))
    r = await recharge_raw(api, user, {"package_id": "coins_330"}, key)
    assert_error(r, 409, "idempotency_conflict")
    assert await coins_of(api, user) == 65
    # The key still stands for its first request.
    assert ok_json(await recharge_raw(api, user, {"package_id": "coins_65"}, key)) == first


async def test_idempotency_keys_are_scoped_to_the_caller(api: Api) -> None:
    alice, bob = await adult(api), await adult(api)
    key = new_key()
    for_alice = ok_json(await recharge_raw(api, alice, {"package_id": "coins_65"}, key))
    for_bob = ok_json(await recharge_raw(api, bob, {"package_id": "coins_330"}, key))
    assert for_alice["coins"] == 65 and for_bob["coins"] == 330
    assert for_alice["transaction_id"] != for_bob["transaction_id"]
    assert await coins_of(api, alice) == 65
    assert await coins_of(api, bob) == 330


async def test_ten_concurrent_recharges_with_one_key_credit_once(api: Api) -> None:
    user = await adult(api)
    key = new_key()
    answers = await asyncio.gather(
        *(recharge_raw(api, user, {"package_id": "coins_65"}, key) for _ in range(10))
    )
    bodies = [ok_json(r) for r in answers]
    assert all(body == bodies[0] for body in bodies), bodies
    assert await coins_of(api, user) == 65
    items = ok_json(await api.call("GET", "/api/wallet/transactions", user.token))["items"]
    assert len(items) == 1


async def test_an_unknown_package_is_refused_with_422(api: Api) -> None:
    user = await adult(api)
    r = await recharge_raw(api, user, {"package_id": "coins_1000000"}, new_key())
    assert_error(r, 422, "unknown_package")
    assert await coins_of(api, user) == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-package-id"),
        pytest.param({"package_id": None}, id="null"),
        pytest.param({"package_id": 65}, id="number"),
        pytest.param({"package_id": ["coins_65"]}, id="list"),
        pytest.param(["coins_65"], id="array-body"),
        pytest.param("coins_65", id="string-body"),
    ],
)
async def test_a_recharge_body_without_a_package_id_string_is_invalid(api: Api, body: Any) -> None:
    user = await adult(api)
    assert_error(await recharge_raw(api, user, body, new_key()), 400, "invalid")
    assert await coins_of(api, user) == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="truncated"),
        pytest.param(b"package_id=coins_65", id="form-encoded"),
    ],
)
async def test_a_recharge_body_that_is_not_json_is_invalid(api: Api, body: bytes) -> None:
    user = await adult(api)
    r = await api.call(
        "POST",
        "/api/wallet/recharge",
        user.token,
        content=body,
        headers={"Idempotency-Key": new_key(), "Content-Type": "application/json"},
    )
    assert_error(r, 400, "invalid")


@pytest.mark.parametrize(
    "birthdate",
    [
        pytest.param(years_ago(18, days=1), id="turns-18-tomorrow"),
        pytest.param(years_ago(13), id="13-years-old"),
    ],
)
async def test_a_user_under_18_cannot_recharge(api: Api, birthdate: str) -> None:
    minor = await api.signup(unique_name("minor"), birthdate)
    r = await recharge_raw(api, minor, {"package_id": "coins_65"}, new_key())
    assert_error(r, 403, "age_restricted")
    assert await coins_of(api, minor) == 0


async def test_a_user_can_recharge_on_their_18th_birthday(api: Api) -> None:
    user = await api.signup(unique_name(), years_ago(18))
    assert ok_json(await recharge_raw(api, user, {"package_id": "coins_65"}, new_key()))


# --- transactions -----------------------------------------------------------------------


async def transactions(api: Api, user: User, query: str = "") -> dict[str, Any]:
    return ok_json(await api.call("GET", f"/api/wallet/transactions{query}", user.token))


async def test_a_new_user_has_no_transactions(api: Api) -> None:
    page = await transactions(api, await adult(api))
    assert page["items"] == []
    assert page.get("next") is None
    assert "next" in page


async def test_recharges_and_gifts_are_listed_newest_first_with_their_kinds(api: Api) -> None:
    host, viewer = await adult(api), await adult(api)
    first = await api.recharge(viewer, "coins_65")
    second = await api.recharge(viewer, "coins_330")
    room = await api.go_live(host)
    await send_gifts(api, room["id"], viewer, [("rose", 1), ("finger_heart", 2)])

    sent = (await transactions(api, viewer))["items"]
    assert [item["kind"] for item in sent] == ["gift_sent", "gift_sent", "recharge", "recharge"]
    assert [abs(item["coins"]) for item in sent] == [10, 1, 330, 65]
    assert [item["diamonds"] for item in sent] == [0, 0, 0, 0]
    assert sent[2]["coins"] == 330 and sent[3]["coins"] == 65  # a recharge adds coins
    assert [sent[3]["id"], sent[2]["id"]] == [first["transaction_id"], second["transaction_id"]]

    received = (await transactions(api, host))["items"]
    assert [item["kind"] for item in received] == ["gift_received", "gift_received"]
    assert [item["diamonds"] for item in received] == [10, 1]
    assert [item["coins"] for item in received] == [0, 0]

    for item in sent + received:
        assert_has_keys(item, {"id", "kind", "coins", "diamonds", "at"}, "a transaction")
        assert is_int(item["id"]) and is_int(item["coins"]) and is_int(item["diamonds"])
        assert_recent(item["at"])
    for items in (sent, received):
        assert len({item["id"] for item in items}) == len(items)
        stamps = [parse_rfc3339_utc(item["at"]) for item in items]
        assert stamps == sorted(stamps, reverse=True), "newest first"


@pytest.mark.parametrize("limit", [1, 3, 7, 20, 100])
async def test_paging_with_limit_and_before_visits_every_item_once(api: Api, limit: int) -> None:
    host, viewer = await adult(api), await adult(api)
    for package in ("coins_65", "coins_330", "coins_65", "coins_330", "coins_65"):
        await api.recharge(viewer, package)
    room = await api.go_live(host)
    await send_gifts(api, room["id"], viewer, [("rose", n) for n in range(1, 16)])
    everything = (await transactions(api, viewer, "?limit=100"))["items"]
    assert len(everything) == 20

    seen: list[dict[str, Any]] = []
    query = f"?limit={limit}"
    for _ in range(100):
        page = await transactions(api, viewer, query)
        assert 1 <= len(page["items"]) <= limit, page
        seen.extend(page["items"])
        if page["next"] is None:
            break
        assert is_int(page["next"])
        query = f"?limit={limit}&before={page['next']}"
    assert [item["id"] for item in seen] == [item["id"] for item in everything]
    assert seen == everything


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("?limit=0", id="limit-0"),
        pytest.param("?limit=-1", id="limit-negative"),
        pytest.param("?limit=101", id="limit-101"),
        pytest.param("?limit=abc", id="limit-word"),
        pytest.param("?limit=2.5", id="limit-fraction"),
        pytest.param("?limit=1e2", id="limit-exponent"),
        pytest.param("?limit=99999999999999999999999", id="limit-huge"),
        pytest.param("?before=0", id="before-0"),
        pytest.param("?before=-1", id="before-negative"),
        pytest.param("?before=abc", id="before-word"),
        pytest.param("?before=1.5", id="before-fraction"),
    ],
)
async def test_a_bad_limit_or_before_is_invalid(api: Api, query: str) -> None:
    user = await adult(api)
    r = await api.call("GET", f"/api/wallet/transactions{query}", user.token)
    assert_error(r, 400, "invalid")


async def test_a_user_sees_only_their_own_transactions(api: Api) -> None:
    alice, bob = await funded_viewer(api, "coins_65"), await funded_viewer(api, "coins_330")
    alice_items = (await transactions(api, alice))["items"]
    bob_items = (await transactions(api, bob))["items"]
    assert [item["coins"] for item in alice_items] == [65]
    assert [item["coins"] for item in bob_items] == [330]
