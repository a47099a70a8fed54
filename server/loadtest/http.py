"""A small HTTP/1.1 client over asyncio, and the calls a load test makes.

Why our own: the load tester must run from a plain install (`pip install -e .`), whose
dependencies are the server's; httpx is only in the dev extra. A load test makes few HTTP
calls (sign-ups, recharges, going live, the final checks), so one connection per call
(`Connection: close`) is simple and cheap on loopback. Bodies are JSON; a response is read
by `Content-Length`, `chunked` or to the end, and capped at `RESPONSE_BYTES_MAX`.

Errors: `HttpError` for a transport failure or an answer that is not what the call expects
(its message names the call, the status and the server's error code).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

RESPONSE_BYTES_MAX = 32 * 1024 * 1024
TIMEOUT_S = 30.0
RETRIES = 5  # for 429, 503 and transport errors, on calls safe to repeat


class HttpError(Exception):
    def __init__(self, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None

    def error_code(self) -> str:
        try:
            doc = self.json()
            return str(doc["error"]["code"])
        except (ValueError, TypeError, KeyError):
            return f"http_{self.status}"


async def request(
    base_url: str,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One call on a fresh connection; raises `HttpError` on a transport failure."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payload = b"" if body is None else orjson.dumps(body)
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Connection: close",
        "Accept: application/json",
        f"Content-Length: {len(payload)}",
    ]
    if body is not None:
        lines.append("Content-Type: application/json")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload
    try:
        async with asyncio.timeout(TIMEOUT_S):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(raw)
                await writer.drain()
                return await _read_response(reader)
            finally:
                writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
        raise HttpError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc


async def _read_response(reader: asyncio.StreamReader) -> Answer:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        length = int(headers["content-length"])
        if length > RESPONSE_BYTES_MAX:
            raise ValueError(f"a {length}-byte response is over the cap")
        return Answer(status, await reader.readexactly(length))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return Answer(status, bytes(chunks))
            chunks += await reader.readexactly(size)
            await reader.readexactly(2)
            if len(chunks) > RESPONSE_BYTES_MAX:
                raise ValueError("the response is over the cap")
    return Answer(status, await reader.read(RESPONSE_BYTES_MAX))


class Api:
    """The calls of a run, each expecting its status; `retry` repeats what is safe to repeat
    (reads, and money calls under an Idempotency-Key) on 429, 503 and transport errors."""

    def __init__(self, base_url: str, admin_token: str = "") -> None:
        self.base_url = base_url
        self.admin_token = admin_token

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        key: str | None = None,
        expect: int = 200,
        retry: bool = True,
    ) -> Any:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if key is not None:
            headers["Idempotency-Key"] = key
        problem = ""
        for attempt in range(RETRIES if retry else 1):
            if attempt:
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
            try:
                answer = await request(self.base_url, method, path, body, headers)
            except HttpError as exc:
                problem = str(exc)
                continue
            if answer.status in (429, 503) and retry:
                problem = f"{answer.status} {answer.error_code()}"
                continue
            if answer.status != expect:
                code = answer.error_code()
                raise HttpError(
                    f"{method} {path}: expected {expect}, got {answer.status} {code}: "
                    f"{answer.body[:300]!r}",
                    answer.status,
                    code,
                )
            return answer.json()
        raise HttpError(
            f"{method} {path}: gave up after {RETRIES} tries: {problem}", 0, "transport"
        )

    async def healthz(self) -> bool:
        try:
            answer = await self.call("GET", "/healthz", retry=False)
        except HttpError:
            return False
        return bool(answer == {"ok": True})

    async def catalog(self) -> dict[str, Any]:
        doc: dict[str, Any] = await self.call("GET", "/api/catalog")
        return doc

    async def sign_up(self, name: str, birthdate: str) -> tuple[int, str]:
        """(user id, token). Not retried: a repeat could meet its own first success."""
        doc = await self.call(
            "POST",
            "/api/users",
            body={"name": name, "birthdate": birthdate},
            expect=201,
            retry=False,
        )
        return int(doc["id"]), str(doc["token"])

    async def recharge(self, token: str, package_id: str, key: str) -> int:
        """Buy a package under an idempotency key; the balance after."""
        doc = await self.call(
            "POST", "/api/wallet/recharge", token=token, body={"package_id": package_id}, key=key
        )
        return int(doc["coins"])

    async def go_live(self, token: str, title: str) -> dict[str, Any]:
        doc: dict[str, Any] = await self.call(
            "POST", "/api/rooms", token=token, body={"title": title}, expect=201, retry=False
        )
        return doc

    async def end_room(self, token: str, room: int) -> None:
        await self.call("POST", f"/api/rooms/{room}/end", token=token)

    async def room(self, room: int) -> dict[str, Any]:
        doc: dict[str, Any] = await self.call("GET", f"/api/rooms/{room}")
        return doc

    async def me(self, token: str) -> dict[str, Any]:
        doc: dict[str, Any] = await self.call("GET", "/api/me", token=token)
        return doc

    async def audit(self) -> dict[str, Any]:
        doc: dict[str, Any] = await self.call("GET", "/api/admin/audit", token=self.admin_token)
        return doc

    async def room_gifts(self, room: int, pages_max: int = 10_000) -> list[dict[str, Any]]:
        """Every gift transfer of the room (the admin extension), following `next`."""
        items: list[dict[str, Any]] = []
        after = 0
        for _ in range(pages_max):
            doc = await self.call(
                "GET", f"/api/admin/rooms/{room}/gifts?after={after}", token=self.admin_token
            )
            items += doc["items"]
            if doc["next"] is None:
                return items
            after = int(doc["next"])
        raise HttpError(f"room {room}: more than {pages_max} pages of gifts")
