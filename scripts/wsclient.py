"""Just enough of RFC 6455 for cheap benchmark clients: many per process, on one epoll.

`websockets`' asyncio client costs tens of microseconds a frame; with thousands of sockets
and tens of thousands of frames a second, that load generator, not the server, would be
measured. A `WsClient` is a non-blocking socket fed bytes by its pool: the upgrade handshake,
unmasked server frames (fragments reassembled, ping answered with pong, close echoed), and
masked client frames (`client_frame`). The first message must be the contract's `welcome`;
every later one goes to `on_message`, which a subclass defines (`wsview.Viewer`,
`wssend.Sender`). A `ClientPool` opens many clients (a bounded number of handshakes at a
time), reads them and closes them; each benchmark drives its own loop around it.

Errors: `ClientError` (the server refused the client or broke the protocol) from `open`; in
a running pool a client's failure is noted in its `error` and `closed_with`, never raised.
Only 127.0.0.1.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import select
import socket
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import orjson

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HANDSHAKE_BYTES_MAX = 16 * 1024
FRAME_BYTES_MAX = 64 * 1024 * 1024
RECV_BYTES = 256 * 1024

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class ClientError(Exception):
    """The server broke the protocol or refused the client; the message says how."""


class WsClient:
    """One WebSocket client over a non-blocking socket, fed bytes by its pool: the handshake,
    unmasked server frames, fragments, ping -> pong, close. Each message after the welcome
    goes to `on_message`; `welcome` is the first message once it came; `error` says why the
    client failed."""

    def __init__(self, sock: socket.socket, host_port: str, path: str) -> None:
        self.sock = sock
        self.request, self._accept = handshake(host_port, path)
        self._open = False
        self._buf = b""
        self._fragments: list[bytes] = []
        self.welcome: dict[str, Any] | None = None
        self.error = ""
        self.closed_with = ""  # the close code, if the server closed the socket

    def feed(self, data: bytes, now: float) -> None:
        """Bytes read from the socket at `now`; an empty `data` is the end of the stream."""
        if not data:
            self.closed_with = self.closed_with or "no close frame"
            self.error = self.error or "connection closed by the server"
            return
        try:
            if self._buf:
                data = self._buf + data
                self._buf = b""
            if not self._open:
                data = self._read_handshake(data)
            self._read_frames(data, now)
        except ClientError as exc:
            self.error = str(exc)
            self.closed_with = self.closed_with or f"protocol error: {exc}"[:200]

    def on_message(self, raw: bytes, now: float) -> None:
        """A text or binary message after the welcome, received at `now`."""

    def send_close(self) -> None:
        """Send a close frame (1000), if the socket takes it now."""
        if self._open:
            with contextlib.suppress(OSError):
                self.sock.send(client_frame(OP_CLOSE, (1000).to_bytes(2, "big")))

    # --- the wire ---------------------------------------------------------------------------

    def _read_handshake(self, data: bytes) -> bytes:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > HANDSHAKE_BYTES_MAX:
                raise ClientError("handshake response too long")
            self._buf = data
            return b""
        head = data[:end].decode("latin-1")
        status = head.split("\r\n", 1)[0]
        if not status.startswith("HTTP/1.1 101"):
            raise ClientError(f"handshake refused: {status!r}")
        accepted = any(
            line.split(":", 1)[0].strip().lower() == "sec-websocket-accept"
            and line.split(":", 1)[1].strip() == self._accept
            for line in head.split("\r\n")[1:]
        )
        if not accepted:
            raise ClientError("handshake without the right Sec-WebSocket-Accept")
        self._open = True
        return data[end + 4 :]

    def _read_frames(self, data: bytes, now: float) -> None:
        pos, size = 0, len(data)
        while size - pos >= 2:
            b0, b1 = data[pos], data[pos + 1]
            if b1 & 0x80:
                raise ClientError("a masked frame from the server")
            length, head = b1 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
            if length > FRAME_BYTES_MAX:
                raise ClientError(f"a frame of {length} bytes")
            end = pos + head + length
            if end > size:
                break
            payload = data[pos + head : end]
            pos = end
            opcode = b0 & 0x0F
            if opcode <= OP_BINARY:  # continuation, text or binary
                if b0 & 0x80 and not self._fragments:
                    self._message(payload, now)
                else:
                    self._fragments.append(payload)
                    if b0 & 0x80:
                        whole = b"".join(self._fragments)
                        self._fragments.clear()
                        self._message(whole, now)
            elif opcode == OP_PING:
                with contextlib.suppress(OSError):
                    self.sock.send(client_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self.closed_with = str(code)
                self.send_close()  # echo the close, as RFC 6455 asks
                raise ClientError(f"closed by the server with {code}")
        if pos < size:
            self._buf = data[pos:]

    def _message(self, raw: bytes, now: float) -> None:
        if self.welcome is not None:
            self.on_message(raw, now)
            return
        welcome = orjson.loads(raw)
        if not isinstance(welcome, dict) or welcome.get("type") != "welcome":
            raise ClientError(f"first message was not a welcome: {raw[:200]!r}")
        self.welcome = welcome


C = TypeVar("C", bound=WsClient)


class ClientPool(Generic[C]):
    """Many clients of one server in one process, on one epoll: opening them, reading."""

    def __init__(self, host_port: str) -> None:
        host, port = host_port.rsplit(":", 1)
        self.address = (host, int(port))
        self.host_port = host_port
        self.clients: list[C] = []
        self._epoll = select.epoll()
        self._by_fd: dict[int, C] = {}

    def open(
        self,
        make: Callable[[socket.socket, int], C],
        count: int,
        concurrency: int,
        timeout_s: float,
    ) -> None:
        """Open `count` clients, `make(sock, i)` each, `concurrency` handshakes at a time, and
        wait for every welcome; a refusal, a close or `timeout_s` raises ClientError."""
        todo = list(reversed(range(count)))
        waiting: dict[int, C] = {}
        deadline = time.monotonic() + timeout_s
        while todo or waiting:
            while todo and len(waiting) < concurrency:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                client = make(sock, todo.pop())
                self.clients.append(client)
                err = sock.connect_ex(self.address)
                if err not in (0, errno.EINPROGRESS):
                    raise ClientError(f"connect: {os.strerror(err)}")
                self._by_fd[sock.fileno()] = client
                waiting[sock.fileno()] = client
                self._epoll.register(sock.fileno(), select.EPOLLOUT)
            if time.monotonic() > deadline:
                raise ClientError(
                    f"{len(waiting) + len(todo)} clients not welcomed in {timeout_s:g} s"
                )
            for fd, mask in self._epoll.poll(0.05):
                client = self._by_fd[fd]
                if fd in waiting and mask & select.EPOLLOUT:
                    err = client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise ClientError(f"connect: {os.strerror(err)}")
                    client.sock.send(client.request)
                    self._epoll.modify(fd, select.EPOLLIN)
                    continue
                self._read(fd, client, time.monotonic())
                if client.error:
                    raise ClientError(f"a client failed before its welcome: {client.error}")
                if client.welcome is not None:
                    waiting.pop(fd, None)

    def _read(self, fd: int, client: C, now: float) -> None:
        try:
            data = client.sock.recv(RECV_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:
            client.error = client.error or repr(exc)
            client.closed_with = client.closed_with or "reset"
            data = b""
        client.feed(data, now)
        if not data or client.error:
            self._epoll.unregister(fd)
            del self._by_fd[fd]

    def close(self) -> None:
        """Send every open client a close frame and close every socket."""
        for client in self.clients:
            if client.sock.fileno() in self._by_fd:
                client.send_close()
            client.sock.close()
        self._by_fd.clear()
        self._epoll.close()


def handshake(host_port: str, path: str) -> tuple[bytes, str]:
    """The upgrade request, and the Sec-WebSocket-Accept the server must answer with."""
    key = base64.b64encode(os.urandom(16))
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    return request.encode(), accept


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked frame from the client, of up to 65,535 bytes (the contract allows 4,096)."""
    size = len(payload)
    assert size < 1 << 16
    mask = os.urandom(4)
    key = int.from_bytes(mask * (size // 4 + 1), "little") & ((1 << (8 * size)) - 1)
    masked = (int.from_bytes(payload, "little") ^ key).to_bytes(size, "little")
    head = bytes([0x80 | opcode, 0x80 | size]) if size < 126 else bytes([0x80 | opcode, 0xFE])
    if size >= 126:
        head += size.to_bytes(2, "big")
    return head + mask + masked
