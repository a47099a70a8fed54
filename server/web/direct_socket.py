"""Writing to a WebSocket without ASGI: the `giftcast.socket` scope extension and frame bytes.

`ws_protocol.GiftcastWSProtocol` puts itself in `scope["extensions"][SCOPE_KEY]` once the
handshake is under way. The app (the hub's `Conn`) writes through it synchronously, with no
task, future or ASGI coroutine per frame; the ASGI `send` is still used for the handshake.
ASGI allows server-specific extensions; this one is ours alone, so the app refuses a socket
whose scope lacks it (the server is then not `giftcast serve`).

Server-to-client frames are never masked and giftcast never compresses (an uncompressed
message is valid even when permessage-deflate was negotiated: RSV1 unset), so the bytes of a
frame depend only on its payload: a room's batch is framed once and the same bytes are
written to every socket of the room.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

SCOPE_KEY = "giftcast.socket"

_FIN_TEXT = 0x81  # FIN set, opcode 1 (text)
_LEN_16 = 126
_LEN_64 = 127


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame carrying `payload` (UTF-8 the caller vouches for)."""
    n = len(payload)
    if n < _LEN_16:
        header = bytes((_FIN_TEXT, n))
    elif n < 1 << 16:
        header = bytes((_FIN_TEXT, _LEN_16)) + n.to_bytes(2, "big")
    else:
        header = bytes((_FIN_TEXT, _LEN_64)) + n.to_bytes(8, "big")
    return header + payload


class DirectSocket(Protocol):
    """What the app may do to an open socket, at once, from the event loop's thread.

    `write_frame` and `write_text` return False, writing nothing, while the transport is paused
    for writing (its buffer is over the high-water mark) and once the socket is closing or
    gone; the caller keeps the frame and tries again when `on_writable`'s callback runs.
    They never wait and never raise for a peer that went away."""

    @property
    def gone(self) -> bool:
        """Closing or closed: no frame will ever be taken again."""
        ...

    @property
    def can_write(self) -> bool:
        """Open and not paused for writing: `write_frame` would take a frame now."""
        ...

    def write_frame(self, frame: bytes) -> bool:
        """Write bytes framed by `text_frame` (one or more whole frames)."""
        ...

    def write_text(self, text: str) -> bool:
        """Frame and write one text message."""
        ...

    def close_now(self, code: int, reason: str) -> bool:
        """Send the close frame (after whatever the transport holds) and start the closing
        handshake, as the ASGI `websocket.close` would; False if already closing or gone."""
        ...

    def on_writable(self, callback: Callable[[], None] | None) -> None:
        """Call `callback` each time the transport resumes writing, and once when the
        connection is lost (then `gone` is True); None removes it."""
        ...
