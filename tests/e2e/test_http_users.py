"""`POST /api/users`, `GET /api/me` and `POST /api/me/token` over a real socket.

Nothing here depends on what another test did, so the module shares one server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.http_helpers import (
    ADULT_BIRTHDATE,
    assert_error,
    assert_has_keys,
    is_int,
    ok_json,
    on_shared_server,
    shared_server,
    sign_up_raw,
    today_utc,
    unique_name,
    years_ago,
)
from tests.support.client import Api

pytestmark = on_shared_server

BODY_MAX = 16 * 1024  # the contract server's default `http_body_bytes_max`


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    async with shared_server(tmp_path_factory) as shared:
        yield shared


# --- sign-up: the answer -----------------------------------------------------------------


async def test_sign_up_answers_201_with_id_name_and_token(api: Api) -> None:
    r = await sign_up_raw(api, {"name": "alice", "birthdate": "2001-05-17"})
    doc = ok_json(r, 201)
    assert_has_keys(doc, {"id", "name", "token"}, "sign-up answer")
    assert is_int(doc["id"]) and doc["id"] > 0
    assert doc["name"] == "alice"
    assert isinstance(doc["token"], str) and doc["token"]
    me = ok_json(await api.call("GET", "/api/me", doc["token"]))
    assert me["id"] == doc["id"] and me["name"] == "alice"


async def test_each_sign_up_gets_its_own_id_and_token(api: Api) -> None:
    first = ok_json(await sign_up_raw(api, {"name": "one", "birthdate": ADULT_BIRTHDATE}), 201)
    second = ok_json(await sign_up_raw(api, {"name": "two", "birthdate": ADULT_BIRTHDATE}), 201)
    assert first["id"] != second["id"]
    assert first["token"] != second["token"]


# --- names ------------------------------------------------------------------------------

VALID_NAMES = [
    pytest.param("a", id="one-char"),
    pytest.param("A" * 32, id="32-chars"),
    pytest.param("Bob_1.2-3", id="every-allowed-class"),
    pytest.param("0123456789", id="digits-only"),
    pytest.param("...", id="dots-only"),
    pytest.param("-_-", id="dash-underscore"),
]


@pytest.mark.parametrize("name", VALID_NAMES)
async def test_a_name_of_1_to_32_allowed_characters_is_accepted_as_given(
    api: Api, name: str
) -> None:
    doc = ok_json(await sign_up_raw(api, {"name": name, "birthdate": ADULT_BIRTHDATE}), 201)
    assert doc["name"] == name


INVALID_NAMES = [
    pytest.param("", id="empty"),
    pytest.param("a" * 33, id="33-chars"),
    pytest.param("al ice", id="inner-space"),
    pytest.param(" alice", id="leading-space"),
    pytest.param("alice ", id="trailing-space"),
    pytest.param("alice\n", id="trailing-newline"),
    pytest.param("\nalice", id="leading-newline"),
    pytest.param("ali\tce", id="tab"),
    pytest.param("alice\x00", id="nul"),
    pytest.param("alicé", id="accented-letter"),
    pytest.param("ａｌｉｃｅ", id="fullwidth-letters"),
    pytest.param("名前", id="cjk"),
    pytest.param("alice\u200b", id="zero-width-space"),
    pytest.param("٣", id="arabic-indic-digit"),
    pytest.param("alice!", id="bang"),
    pytest.param("al/ice", id="slash"),
    pytest.param("<b>", id="html"),
    pytest.param("al@ice", id="at-sign"),
    pytest.param(None, id="null"),
    pytest.param(42, id="number"),
    pytest.param(True, id="bool"),
    pytest.param(["alice"], id="list"),
    pytest.param({"name": "alice"}, id="object"),
]


@pytest.mark.parametrize("name", INVALID_NAMES)
async def test_a_name_outside_1_to_32_of_the_allowed_characters_is_invalid(
    api: Api, name: object
) -> None:
    r = await sign_up_raw(api, {"name": name, "birthdate": ADULT_BIRTHDATE})
    assert_error(r, 400, "invalid")


async def test_a_missing_name_is_invalid(api: Api) -> None:
    assert_error(await sign_up_raw(api, {"birthdate": ADULT_BIRTHDATE}), 400, "invalid")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("dave", "dave", id="same"),
        pytest.param("Erin", "erin", id="capital-then-lower"),
        pytest.param("frank", "FRANK", id="lower-then-upper"),
        pytest.param("Mixed.Name_1", "mIXED.nAME_1", id="mixed-case"),
    ],
)
async def test_names_are_unique_regardless_of_case(api: Api, first: str, second: str) -> None:
    taken = ok_json(await sign_up_raw(api, {"name": first, "birthdate": ADULT_BIRTHDATE}), 201)
    r = await sign_up_raw(api, {"name": second, "birthdate": ADULT_BIRTHDATE})
    assert_error(r, 409, "name_taken")
    # The first holder keeps the name; another name is still free.
    me = ok_json(await api.call("GET", "/api/me", taken["token"]))
    assert me["name"] == first
    ok_json(await sign_up_raw(api, {"name": first + "2", "birthdate": ADULT_BIRTHDATE}), 201)


async def test_of_ten_concurrent_sign_ups_for_one_name_exactly_one_wins(api: Api) -> None:
    base = unique_name("race")
    spellings = [base, base.upper(), base.capitalize()] * 3 + [base.swapcase()]
    answers = await asyncio.gather(
        *(sign_up_raw(api, {"name": name, "birthdate": ADULT_BIRTHDATE}) for name in spellings)
    )
    won = [r for r in answers if r.status_code == 201]
    assert len(won) == 1, [r.status_code for r in answers]
    for r in answers:
        if r.status_code != 201:
            assert_error(r, 409, "name_taken")


# --- birthdates -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "birthdate",
    [
        pytest.param("2001-05-17", id="contract-example"),
        pytest.param("2000-02-29", id="leap-day"),
        pytest.param("1950-12-31", id="long-ago"),
        pytest.param(today_utc().isoformat(), id="born-today"),
    ],
)
async def test_a_real_past_date_written_yyyy_mm_dd_is_a_birthdate(api: Api, birthdate: str) -> None:
    ok_json(await sign_up_raw(api, {"name": unique_name(), "birthdate": birthdate}), 201)


INVALID_BIRTHDATES = [
    pytest.param("", id="empty"),
    pytest.param("2001/05/17", id="slashes"),
    pytest.param("17-05-2001", id="day-first"),
    pytest.param("2001-5-17", id="one-digit-month"),
    pytest.param("20010517", id="no-dashes"),
    pytest.param("2001-05-17T00:00:00", id="datetime"),
    pytest.param(" 2001-05-17", id="leading-space"),
    pytest.param("2001-05-17 ", id="trailing-space"),
    pytest.param("2001-W20-4", id="iso-week-date"),
    pytest.param("2001-137", id="ordinal-date"),
    pytest.param("yesterday", id="words"),
    pytest.param("２００１-05-17", id="fullwidth-digits"),
    pytest.param("2001-02-30", id="february-30"),
    pytest.param("1999-02-29", id="leap-day-of-a-common-year"),
    pytest.param("2001-04-31", id="april-31"),
    pytest.param("2001-13-01", id="month-13"),
    pytest.param("2001-00-10", id="month-0"),
    pytest.param("2001-05-00", id="day-0"),
    pytest.param(years_ago(0, days=1), id="tomorrow"),
    pytest.param("2999-01-01", id="far-future"),
    pytest.param(None, id="null"),
    pytest.param(20010517, id="number"),
    pytest.param(True, id="bool"),
    pytest.param(["2001-05-17"], id="list"),
    pytest.param({"year": 2001, "month": 5, "day": 17}, id="object"),
]


@pytest.mark.parametrize("birthdate", INVALID_BIRTHDATES)
async def test_a_birthdate_that_is_not_a_real_past_yyyy_mm_dd_date_is_invalid(
    api: Api, birthdate: object
) -> None:
    name = unique_name()
    assert_error(await sign_up_raw(api, {"name": name, "birthdate": birthdate}), 400, "invalid")
    # Nothing was created: the name is still free.
    ok_json(await sign_up_raw(api, {"name": name, "birthdate": ADULT_BIRTHDATE}), 201)


async def test_a_missing_birthdate_is_invalid(api: Api) -> None:
    assert_error(await sign_up_raw(api, {"name": unique_name()}), 400, "invalid")


# --- bodies -----------------------------------------------------------------------------

MALFORMED_BODIES = [
    pytest.param(b"", id="empty"),
    pytest.param(b"   ", id="whitespace-only"),
    pytest.param(b'{"name": "alice", "birthdate": "2001-05-17",}', id="trailing-comma"),
    pytest.param(b"{name: 'alice'}", id="js-literal"),
    pytest.param(b'{"name": "alice"', id="truncated"),
    pytest.param(b'{"name": "al\xffice", "birthdate": "2001-05-17"}', id="not-utf8"),
    pytest.param(b"name=alice&birthdate=2001-05-17", id="form-encoded"),
    pytest.param(b"[" * 8000 + b"]" * 8000, id="nested-8000-deep"),
    pytest.param(b'{"name": NaN}', id="nan"),
    pytest.param(b"[]", id="array"),
    pytest.param(b'[{"name": "alice", "birthdate": "2001-05-17"}]', id="array-of-object"),
    pytest.param(b'"alice"', id="string"),
    pytest.param(b"42", id="number"),
    pytest.param(b"null", id="null"),
    pytest.param(b"true", id="true"),
]


@pytest.mark.parametrize("body", MALFORMED_BODIES)
async def test_a_body_that_is_not_a_json_object_is_invalid(api: Api, body: bytes) -> None:
    r = await api.call(
        "POST", "/api/users", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(r, 400, "invalid")


def _padded_sign_up(size: int) -> bytes:
    """A valid sign-up body padded with JSON whitespace to exactly `size` bytes."""
    body = b'{"name": "%s", "birthdate": "1990-01-01"}' % unique_name().encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


async def test_a_body_of_exactly_16_kib_is_read(api: Api) -> None:
    body = _padded_sign_up(BODY_MAX)
    assert len(body) == BODY_MAX
    r = await api.call(
        "POST", "/api/users", content=body, headers={"Content-Type": "application/json"}
    )
    ok_json(r, 201)


async def test_a_body_over_16_kib_is_refused_with_413_invalid(api: Api) -> None:
    r = await api.call(
        "POST",
        "/api/users",
        content=_padded_sign_up(BODY_MAX + 1),
        headers={"Content-Type": "application/json"},
    )
    assert_error(r, 413, "invalid")


async def test_a_chunked_body_over_16_kib_is_refused_with_413_invalid(api: Api) -> None:
    """No Content-Length to trust: the server must count what actually arrives."""
    body = _padded_sign_up(4 * BODY_MAX)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    r = await api.http.request(
        "POST", "/api/users", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "invalid")


# --- GET /api/me ------------------------------------------------------------------------


async def test_me_answers_id_name_coins_diamonds_and_adult(api: Api) -> None:
    user = await api.signup("carol", ADULT_BIRTHDATE)
    doc = ok_json(await api.call("GET", "/api/me", user.token))
    assert_has_keys(doc, {"id", "name", "coins", "diamonds", "adult"}, "GET /api/me")
    assert doc["id"] == user.id and is_int(doc["id"])
    assert doc["name"] == "carol"
    assert doc["coins"] == 0 and is_int(doc["coins"])
    assert doc["diamonds"] == 0 and is_int(doc["diamonds"])
    assert doc["adult"] is True


ADULTHOOD = [
    pytest.param(years_ago(18), True, id="18th-birthday-today"),
    pytest.param(years_ago(18, days=-1), True, id="turned-18-yesterday"),
    pytest.param(years_ago(18, days=1), False, id="turns-18-tomorrow"),
    pytest.param(years_ago(17), False, id="17th-birthday-today"),
    pytest.param(years_ago(0), False, id="born-today"),
    pytest.param(years_ago(40), True, id="40-years-old"),
]


@pytest.mark.parametrize(("birthdate", "adult"), ADULTHOOD)
async def test_adult_is_true_from_the_18th_birthday(api: Api, birthdate: str, adult: bool) -> None:
    user = await api.signup(unique_name(), birthdate)
    assert (await api.me(user))["adult"] is adult


# --- POST /api/me/token (an extension) --------------------------------------------------


async def test_a_fresh_token_works_for_the_same_user(api: Api) -> None:
    user = await api.signup(unique_name(), ADULT_BIRTHDATE)
    doc: dict[str, Any] = ok_json(await api.call("POST", "/api/me/token", user.token))
    fresh = doc["token"]
    assert isinstance(fresh, str) and fresh
    me = ok_json(await api.call("GET", "/api/me", fresh))
    assert me["id"] == user.id and me["name"] == user.name
