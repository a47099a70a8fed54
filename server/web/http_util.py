"""HTTP plumbing shared by the routes: JSON in (size-limited), JSON out, errors, auth."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from server.domain.errors import Code, Refusal
from server.domain.money import RoomId
from server.storage.base import StoreUnavailable

log = logging.getLogger("giftcast.http")

Handler = Callable[[Request], Awaitable[Response]]


class JSONBytes(Response):
    media_type = "application/json"


def json_response(doc: Any, status: int = 200) -> Response:
    return JSONBytes(orjson.dumps(doc), status_code=status)


def error_response(refusal: Refusal, status: int | None = None) -> Response:
    body: dict[str, Any] = {"code": refusal.code.value, "message": refusal.message}
    headers: dict[str, str] = {}
    if refusal.retry_after_ms is not None:
        body["retry_after_ms"] = refusal.retry_after_ms
        headers["Retry-After"] = str(max(1, -(-refusal.retry_after_ms // 1000)))
    return JSONBytes(
        orjson.dumps({"error": body}), status_code=status or refusal.status, headers=headers
    )


def refused(code: Code, message: str, status: int | None = None) -> Response:
    return error_response(Refusal(code, message), status)


def respond(result: dict[str, Any] | Refusal, status: int = 200) -> Response:
    if isinstance(result, Refusal):
        return error_response(result)
    return json_response(result, status)


async def read_json(request: Request, max_bytes: int) -> Any | Response:
    """The decoded JSON body, or an error response (413 too large, 400 not JSON).

    A client that goes away before its whole body arrived is an expected event, not a server
    error: nothing was started for it, and the 400 returned here reaches nobody."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            return refused(Code.INVALID, "Content-Length is not a number")
        if int(declared) > max_bytes:
            return refused(Code.INVALID, f"the body is larger than {max_bytes} bytes", 413)
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                return refused(Code.INVALID, f"the body is larger than {max_bytes} bytes", 413)
    except ClientDisconnect:
        log.info("%s %s: the client went away mid-body", request.method, request.url.path)
        return refused(Code.INVALID, "the client went away before the body was complete")
    if not body:
        return refused(Code.INVALID, "this call needs a JSON body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return refused(Code.INVALID, "the body is not valid JSON (UTF-8, no trailing commas)")


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def room_id(request: Request) -> RoomId | None:
    raw = request.path_params.get("room_id", "")
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return None
    return RoomId(int(raw))


def guarded(handler: Handler) -> Handler:
    """Storage trouble becomes 503 `unavailable`; anything unexpected is logged, never leaked."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except StoreUnavailable as exc:
            log.warning("%s %s: storage unavailable: %s", request.method, request.url.path, exc)
            return refused(Code.UNAVAILABLE, "storage is busy; retry shortly")

    run.__name__ = handler.__name__
    return run
