"""HTTP routes of the wire contract (`/api/...`, `/healthz`): parse, call a service, render."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.domain.errors import Code, Refusal
from server.domain.ledger import audit
from server.domain.money import RoomId
from server.domain.pricing import diamonds_millicents
from server.services.users import Caller
from server.services.wallet import Answer, check_idempotency_key
from server.web.http_util import (
    JSONBytes,
    bearer,
    error_response,
    guarded,
    json_response,
    read_json,
    refused,
    respond,
    room_id,
)
from server.web.runtime import Runtime


def rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _caller(request: Request) -> Caller | Response:
    caller = await rt(request).users.authenticate(bearer(request))
    if caller is None:
        return refused(
            Code.UNAUTHORIZED, "send Authorization: Bearer <token> with a valid, unexpired token"
        )
    return caller


def _room(request: Request) -> RoomId | Response:
    found = room_id(request)
    if found is None:
        return refused(Code.NOT_FOUND, "there is no such room")
    return found


async def healthz(request: Request) -> Response:
    if rt(request).stopping:
        return refused(Code.UNAVAILABLE, "shutting down", 503)
    return json_response({"ok": True})


@guarded
async def sign_up(request: Request) -> Response:
    body = await read_json(request, rt(request).settings.http_body_bytes_max)
    if isinstance(body, Response):
        return body
    if not isinstance(body, dict):
        return refused(Code.INVALID, 'send {"name": "...", "birthdate": "YYYY-MM-DD"}')
    result = await rt(request).users.sign_up(body.get("name"), body.get("birthdate"))
    if isinstance(result, Refusal):
        return error_response(result)
    user = result.user
    return json_response({"id": user.id, "name": user.name, "token": result.token}, 201)


@guarded
async def me(request: Request) -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    runtime = rt(request)
    coins, diamonds = await runtime.store.balances(caller.id)
    return json_response(
        {
            "id": caller.id,
            "name": caller.name,
            "coins": coins,
            "diamonds": diamonds,
            "adult": caller.adult,
            "currency": runtime.catalog.currency,
            "coins_cost_millicents": await runtime.store.cost_basis(caller.id),
            "diamonds_value_millicents": diamonds_millicents(diamonds, runtime.rates),
        }
    )


@guarded
async def refresh_token(request: Request) -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    return json_response({"token": rt(request).users.token_for(caller.id)})


async def catalog(request: Request) -> Response:
    runtime = rt(request)
    cat, s = runtime.catalog, runtime.settings
    return json_response(
        {
            "gifts": [
                {
                    "id": g.id,
                    "name": g.name,
                    "coins": g.coins,
                    "streakable": g.streakable,
                    "animation": g.animation,
                }
                for g in cat.gifts.values()
            ],
            "packages": [
                {"id": p.id, "coins": p.coins, "price_cents": p.price_cents, "currency": p.currency}
                for p in cat.packages.values()
            ],
            "diamonds_per_coin": s.diamonds_per_coin,
            "cents_per_100_diamonds": s.cents_per_100_diamonds,
            "payout_minimum_diamonds": s.payout_minimum_diamonds,
            "streak_window_ms": s.streak_window_ms,
        }
    )


MoneyCall = Callable[[Runtime, Caller, str, Any, str], Awaitable[Answer | Refusal]]


async def _money_call(request: Request, call: MoneyCall) -> Response:
    """A call that moves money: a signed-in caller, an Idempotency-Key, a JSON body; the
    service answers with the stored (replayable) response or a refusal."""
    runtime = rt(request)
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    key = check_idempotency_key(
        request.headers.get("idempotency-key"), runtime.settings.idempotency_key_chars_max
    )
    if isinstance(key, Refusal):
        return error_response(key)
    body = await read_json(request, runtime.settings.http_body_bytes_max)
    if isinstance(body, Response):
        return body
    result = await call(runtime, caller, key, body, request.url.path)
    if isinstance(result, Refusal):
        return error_response(result)
    return JSONBytes(result.body, status_code=result.status)


@guarded
async def recharge(request: Request) -> Response:
    return await _money_call(request, lambda rt_, *args: rt_.wallet.recharge(*args))


@guarded
async def refund(request: Request) -> Response:
    return await _money_call(request, lambda rt_, *args: rt_.wallet.refund(*args))


@guarded
async def request_payout(request: Request) -> Response:
    return await _money_call(request, lambda rt_, *args: rt_.payouts.request(*args))


@guarded
async def my_payouts(request: Request) -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    return json_response(await rt(request).payouts.mine(caller))


@guarded
async def admin_payouts(request: Request) -> Response:
    denied = _admin(request)
    if denied is not None:
        return denied
    older = _int_param(request, "older_than_s", 0, 10**9)
    if isinstance(older, Refusal):
        return error_response(older)
    older_ms = None if older is None else older * 1000
    return json_response(await rt(request).payouts.awaiting_review(older_ms))


@guarded
async def settle_payout(request: Request) -> Response:
    denied = _admin(request)
    if denied is not None:
        return denied
    raw = request.path_params.get("payout_id", "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return refused(Code.NOT_FOUND, "there is no such payout")
    body = await read_json(request, rt(request).settings.http_body_bytes_max)
    if isinstance(body, Response):
        return body
    return respond(await rt(request).payouts.settle(int(raw), body))


@guarded
async def statement_csv(request: Request) -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    month = request.query_params.get("month")
    result = await rt(request).reports.statement_csv(caller, month)
    if isinstance(result, Refusal):
        return error_response(result)
    return Response(
        result,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="giftcast-{month}.csv"'},
    )


@guarded
async def earnings(request: Request) -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    query = request.query_params
    return respond(await rt(request).reports.earnings(caller, query.get("from"), query.get("to")))


def _int_param(request: Request, name: str, low: int, high: int) -> int | Refusal | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18 or not low <= int(raw) <= high:
        return Refusal(Code.INVALID, f"{name} must be an integer {low}-{high}")
    return int(raw)


@guarded
async def transactions(request: Request) -> Response:
    runtime = rt(request)
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    page_max = runtime.settings.transactions_page_max
    limit = _int_param(request, "limit", 1, page_max)
    before = _int_param(request, "before", 1, 2**62)
    for value in (limit, before):
        if isinstance(value, Refusal):
            return error_response(value)
    assert not isinstance(limit, Refusal) and not isinstance(before, Refusal)
    return json_response(await runtime.wallet.transactions(caller, limit or 20, before))


@guarded
async def get_limits(request: Request) -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    return json_response(await rt(request).wallet.limits(caller))


@guarded
async def put_limits(request: Request) -> Response:
    runtime = rt(request)
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    body = await read_json(request, runtime.settings.http_body_bytes_max)
    if isinstance(body, Response):
        return body
    return respond(await runtime.wallet.set_limit(caller, body))


@guarded
async def create_room(request: Request) -> Response:
    runtime = rt(request)
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    body = await read_json(request, runtime.settings.http_body_bytes_max)
    if isinstance(body, Response):
        return body
    return respond(await runtime.rooms.go_live(caller, body), 201)


@guarded
async def list_rooms(request: Request) -> Response:
    return json_response(await rt(request).rooms.list_live())


@guarded
async def get_room(request: Request) -> Response:
    room = _room(request)
    if isinstance(room, Response):
        return room
    return respond(await rt(request).rooms.describe(room))


@guarded
async def leaderboard(request: Request) -> Response:
    room = _room(request)
    if isinstance(room, Response):
        return room
    return respond(await rt(request).rooms.leaderboard(room))


async def _host_call(request: Request) -> tuple[Caller, RoomId] | Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    room = _room(request)
    if isinstance(room, Response):
        return room
    return caller, room


@guarded
async def end_room(request: Request) -> Response:
    found = await _host_call(request)
    if isinstance(found, Response):
        return found
    return respond(await rt(request).rooms.end(*found))


@guarded
async def set_goal(request: Request) -> Response:
    found = await _host_call(request)
    if isinstance(found, Response):
        return found
    body = await read_json(request, rt(request).settings.http_body_bytes_max)
    if isinstance(body, Response):
        return body
    return respond(await rt(request).rooms.set_goal(found[0], found[1], body))


@guarded
async def current_overlay(request: Request) -> Response:
    found = await _host_call(request)
    if isinstance(found, Response):
        return found
    return respond(await rt(request).rooms.current_overlay(*found))


@guarded
async def rotate_overlay(request: Request) -> Response:
    found = await _host_call(request)
    if isinstance(found, Response):
        return found
    runtime = rt(request)
    result = await runtime.rooms.rotate_overlay(*found)
    if not isinstance(result, Refusal):
        runtime.hub.close_overlays(found[1], int(result["version"]))
    return respond(result)


def _admin(request: Request) -> Response | None:
    expected = rt(request).settings.admin_token
    if not expected:
        return refused(Code.FORBIDDEN, "admin calls are off: set GIFTCAST_ADMIN_TOKEN to use them")
    given = bearer(request) or ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return refused(Code.UNAUTHORIZED, "send Authorization: Bearer <GIFTCAST_ADMIN_TOKEN>")
    return None


@guarded
async def admin_audit(request: Request) -> Response:
    denied = _admin(request)
    if denied is not None:
        return denied
    report = audit(await rt(request).store.audit_input())
    doc: dict[str, Any] = {
        "balanced": report.balanced,
        "totals": report.totals,
        "violations": [
            {"rule": v.rule, "account": v.account, "detail": v.detail} for v in report.violations
        ],
        "transfers": report.transfers,
        "entries": report.entries,
    }
    return json_response(doc)


@guarded
async def admin_room_gifts(request: Request) -> Response:
    denied = _admin(request)
    if denied is not None:
        return denied
    room = _room(request)
    if isinstance(room, Response):
        return room
    runtime = rt(request)
    page_max = runtime.settings.room_gifts_page_max
    limit = _int_param(request, "limit", 1, page_max)
    after = _int_param(request, "after", 0, 2**62)
    for value in (limit, after):
        if isinstance(value, Refusal):
            return error_response(value)
    assert not isinstance(limit, Refusal) and not isinstance(after, Refusal)
    return respond(await runtime.reports.room_gifts(room, after or 0, limit or page_max))


ROUTES = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/api/users", sign_up, methods=["POST"]),
    Route("/api/me", me, methods=["GET"]),
    Route("/api/me/token", refresh_token, methods=["POST"]),
    Route("/api/catalog", catalog, methods=["GET"]),
    Route("/api/wallet/recharge", recharge, methods=["POST"]),
    Route("/api/wallet/transactions", transactions, methods=["GET"]),
    Route("/api/wallet/refunds", refund, methods=["POST"]),
    Route("/api/wallet/limits", put_limits, methods=["PUT"]),
    Route("/api/wallet/limits", get_limits, methods=["GET"]),
    Route("/api/rooms", create_room, methods=["POST"]),
    Route("/api/rooms", list_rooms, methods=["GET"]),
    Route("/api/rooms/{room_id}", get_room, methods=["GET"]),
    Route("/api/rooms/{room_id}/end", end_room, methods=["POST"]),
    Route("/api/rooms/{room_id}/leaderboard", leaderboard, methods=["GET"]),
    Route("/api/rooms/{room_id}/goal", set_goal, methods=["PUT"]),
    Route("/api/rooms/{room_id}/overlay_token", rotate_overlay, methods=["POST"]),
    Route("/api/rooms/{room_id}/overlay_token", current_overlay, methods=["GET"]),
    Route("/api/admin/audit", admin_audit, methods=["GET"]),
    Route("/api/admin/rooms/{room_id}/gifts", admin_room_gifts, methods=["GET"]),
    Route("/api/wallet/statement.csv", statement_csv, methods=["GET"]),
    Route("/api/earnings", earnings, methods=["GET"]),
    Route("/api/payouts", request_payout, methods=["POST"]),
    Route("/api/payouts", my_payouts, methods=["GET"]),
    Route("/api/admin/payouts", admin_payouts, methods=["GET"]),
    Route("/api/admin/payouts/{payout_id}/settle", settle_payout, methods=["POST"]),
]
