"""`text_frame`: the bytes the hub writes to every socket are the frame websockets would send."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from server.web.direct_socket import text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 70_000])
def test_a_text_frame_is_what_websockets_serializes_unmasked(size: int) -> None:
    payload = b"x" * size
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)


def test_utf8_payloads_are_framed_by_their_byte_length() -> None:
    payload = '{"name":"Zoë 🌹"}'.encode()
    framed = text_frame(payload)
    assert framed == Frame(Opcode.TEXT, payload).serialize(mask=False)
    assert framed[1] == len(payload) != len(payload.decode())
