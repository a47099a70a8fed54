"""Hostile frames: whatever arrives, `decode_client` answers a value that obeys the contract.

Every frame decodes to `Ping`, `Invalid` or a `GiftRequest` whose id is 1-64 characters and
whose count is an integer 1-99, and never raises. Whatever it answers can be sent back: the
error frame for an `Invalid` (with its id) encodes, and so does a request id.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.domain.errors import Code
from server.protocol.messages import (
    COUNT_MAX,
    GIFT_ID_CHARS_MAX,
    REQUEST_ID_CHARS_MAX,
    ClientMessage,
    GiftRequest,
    Invalid,
    Ping,
    decode_client,
    encode_error,
)

FRAME_BYTES_MAX = 4096
UNLIMITED = 10**8  # to reach the parser with frames the size check would stop first

# Deterministic and quick: the same examples on every run, nothing saved between runs.
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def obeys_the_contract(decoded: ClientMessage) -> None:
    assert isinstance(decoded, Ping | Invalid | GiftRequest), decoded
    if isinstance(decoded, GiftRequest):
        assert type(decoded.id) is str and 1 <= len(decoded.id) <= REQUEST_ID_CHARS_MAX
        assert type(decoded.gift_id) is str and 1 <= len(decoded.gift_id) <= GIFT_ID_CHARS_MAX
        assert type(decoded.count) is int and 1 <= decoded.count <= COUNT_MAX
        decoded.id.encode("utf-8")  # it is echoed in `gift_ok`: it must be real text
        decoded.gift_id.encode("utf-8")
        orjson.loads(encode_error(Code.UNKNOWN_GIFT, "x", decoded.id))
    elif isinstance(decoded, Invalid):
        assert isinstance(decoded.message, str) and 0 < len(decoded.message) <= 300
        if decoded.id is not None:
            assert 1 <= len(decoded.id) <= REQUEST_ID_CHARS_MAX
        answer = orjson.loads(encode_error(Code.INVALID, decoded.message, decoded.id))
        assert answer["code"] == "invalid"


def decode_both(frame: str | bytes) -> None:
    for limit in (FRAME_BYTES_MAX, UNLIMITED):
        obeys_the_contract(decode_client(frame, limit))


@FUZZ
@given(st.text())
def test_any_text(frame: str) -> None:
    decode_both(frame)


@FUZZ
@given(st.binary())
def test_any_bytes(frame: bytes) -> None:
    decode_both(frame)


@FUZZ
@given(st.text(alphabet='{}[]":,0123456789.eE+-truefalsnul \\u', max_size=200))
def test_json_shaped_noise(frame: str) -> None:
    decode_both(frame)
    decode_both(frame.encode())


@FUZZ
@given(
    st.integers(min_value=1, max_value=20_000),
    st.sampled_from(["[", '{"a":', '{"type":"gift","id":', '{"type":"gift","count":']),
    st.booleans(),
)
def test_deep_nesting(depth: int, opener: str, closed: bool) -> None:
    closer = {"[": "]"}.get(opener, "}")
    frame = opener * depth + ("1" if opener != "[" else "") + (closer * depth if closed else "")
    decode_both(frame)


@FUZZ
@given(st.integers(min_value=0, max_value=2**2000) | st.integers(max_value=0, min_value=-(2**2000)))
def test_huge_integers(n: int) -> None:
    frame = f'{{"type":"gift","id":"r1","gift_id":"rose","count":{n}}}'
    decoded = decode_client(frame, UNLIMITED)
    obeys_the_contract(decoded)
    assert isinstance(decoded, GiftRequest) is (1 <= n <= COUNT_MAX)


@FUZZ
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_floats_are_never_counts(x: float) -> None:
    # json.dumps writes NaN and Infinity as the bare literals JSON forbids.
    frame = json.dumps({"type": "gift", "id": "r1", "gift_id": "rose", "count": x})
    decoded = decode_client(frame, FRAME_BYTES_MAX)
    obeys_the_contract(decoded)
    assert isinstance(decoded, Invalid)
    if math.isfinite(x):
        assert decoded.id == "r1"


@FUZZ
@given(st.sampled_from(["NaN", "Infinity", "-Infinity", "nan", "inf", "1e999", "-1e999", "0x10"]))
def test_non_json_number_literals(literal: str) -> None:
    frame = '{"type":"gift","id":"r1","gift_id":"rose","count":' + literal + "}"
    decoded = decode_client(frame, FRAME_BYTES_MAX)
    obeys_the_contract(decoded)
    assert isinstance(decoded, Invalid)


SURROGATES = st.integers(min_value=0xD800, max_value=0xDFFF).map(chr)


@FUZZ
@given(st.lists(st.text(max_size=5) | SURROGATES, min_size=1, max_size=8).map("".join))
def test_lone_surrogates_in_a_str_frame(text: str) -> None:
    for frame in (
        text,
        '{"type":"gift","id":"' + text + '","gift_id":"rose","count":1}',
        '{"type":"gift","id":"r1","gift_id":"' + text + '","count":1}',
        '{"type":"' + text + '"}',
    ):
        decode_both(frame)


@FUZZ
@given(st.lists(st.text(max_size=5) | SURROGATES, min_size=1, max_size=8).map("".join))
def test_escaped_surrogates_in_json(text: str) -> None:
    # ensure_ascii writes a lone surrogate as the escape "\ud800": valid JSON syntax, bad text.
    for doc in (
        {"type": "gift", "id": text, "gift_id": "rose", "count": 1},
        {"type": "gift", "id": "r1", "gift_id": text, "count": 1},
        {"type": text},
    ):
        decode_both(json.dumps(doc, ensure_ascii=True))


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(["type", "id", "gift_id", "count"]), st.text(max_size=70)),
        min_size=1,
        max_size=12,
    )
)
def test_duplicate_keys(pairs: list[tuple[str, str]]) -> None:
    body = ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs)
    decode_both('{"type":"gift",' + body + "}")
    decode_both('{"type":"gift","count":1,' + body + ',"count":3}')


@FUZZ
@given(
    st.sampled_from([2**20, 4096, 64, 65]) | st.integers(min_value=0, max_value=2**20),
    st.sampled_from(["id", "gift_id", "type", "x"]),
)
def test_megabyte_strings(size: int, field: str) -> None:
    doc = {"type": "gift", "id": "r1", "gift_id": "rose", "count": 1, field: "é" * size}
    frame = orjson.dumps(doc)
    decode_both(frame)
    decode_both(frame.decode())
    if len(frame) > FRAME_BYTES_MAX:
        assert isinstance(decode_client(frame, FRAME_BYTES_MAX), Invalid)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
IDS = st.text(min_size=0, max_size=66) | st.sampled_from(["", "a" * 64, "a" * 65]) | JSON_VALUES
COUNTS = st.integers(min_value=-2, max_value=102) | st.sampled_from([1.0, True, "1"]) | JSON_VALUES


@FUZZ
@given(
    st.fixed_dictionaries(
        {"type": st.just("gift")},
        optional={
            "id": IDS,
            "gift_id": IDS,
            "count": COUNTS,
            "extra": JSON_VALUES,
        },
    )
)
def test_random_gift_objects(doc: dict[str, Any]) -> None:
    frame = json.dumps(doc)  # json, not orjson: it writes NaN, big ints and escaped surrogates
    decoded = decode_client(frame, UNLIMITED)
    obeys_the_contract(decoded)
    if isinstance(decoded, GiftRequest):
        # What was read is what was sent (a missing count is pinned by the table in
        # test_messages.py, not here).
        assert (decoded.id, decoded.gift_id) == (doc["id"], doc["gift_id"])
        if "count" in doc:
            assert decoded.count == doc["count"]
    decode_both(frame.encode())


@FUZZ
@given(JSON_VALUES)
def test_random_json_values(value: object) -> None:
    decode_both(json.dumps(value))
    decode_both(json.dumps({"type": "gift", "id": value}))
    decode_both(json.dumps({"type": value}))
