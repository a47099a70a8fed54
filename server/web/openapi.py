"""The HTTP API as an OpenAPI 3.1 document, served at `GET /openapi.json`.

Data only: every HTTP route of `routes.py` and `app.py`, its parameters, bodies, and every
status it can answer with the schema of that answer. WebSockets are not described here (see
docs/protocol.md). Two tests hold it to the server: `tests/e2e/test_http_openapi.py` checks
that the document and the app's routes agree both ways, and `tests/e2e/test_http_schemathesis.py`
sends generated requests to a real server and checks each answer against the document.
Success answers may carry more fields than listed (clients ignore unknown fields).
"""

from __future__ import annotations

from server.web.openapi_parts import (
    AUDIT,
    CATALOG,
    COUNT,
    DATE,
    EARNINGS,
    GIFT_OUTCOME,
    GOAL,
    ID,
    KEY_HEADER,
    PAYOUT_FIELDS,
    PAYOUT_ID,
    RECHARGE,
    ROOM_BASE,
    ROOM_GIFTS,
    ROOM_ID,
    SCHEMAS,
    STATEMENT,
    TEXT,
    TITLE,
    TOP,
    TRANSACTION,
    WHY,
    Doc,
    json_answer,
    list_of,
    nullable,
    obj,
    op,
    page,
    query,
    ref,
)

PATHS: Doc = {
    "/healthz": {"get": op("the server accepts work", (200, obj({"ok": {"const": True}})), ())},
    "/openapi.json": {
        "get": {
            "summary": "this document",
            "security": [],
            "responses": {"200": json_answer({"type": "object"})},
        }
    },
    "/": {"get": page("the browser demo app")},
    "/overlay": {
        "get": {
            **page("the streamer overlay for an OBS browser source"),
            "parameters": [query("room", TEXT), query("token", TEXT)],
        }
    },
    "/static/{path}": {
        "get": {
            "summary": "the pages' scripts and styles",
            "security": [],
            "parameters": [{"name": "path", "in": "path", "required": True, "schema": TEXT}],
            "responses": {
                "200": {"description": "the file", "content": {"*/*": {"schema": {}}}},
                "404": json_answer(ref("Error"), WHY[404]),
            },
        }
    },
    "/api/users": {
        "post": op(
            "sign up",
            (201, obj({"id": ID, "name": TEXT, "token": TEXT})),
            (409,),
            body=obj(
                {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,32}$"},
                    "birthdate": DATE,
                }
            ),
        )
    },
    "/api/me": {
        "get": op(
            "the caller's account and balances",
            (
                200,
                obj(
                    {
                        "id": ID,
                        "name": TEXT,
                        "coins": COUNT,
                        "diamonds": COUNT,
                        "adult": {"type": "boolean"},
                    },
                    {
                        "currency": TEXT,
                        "coins_cost_millicents": COUNT,
                        "diamonds_value_millicents": COUNT,
                    },
                ),
            ),
            (),
            auth="user",
        )
    },
    "/api/me/token": {
        "post": op("a fresh user token", (200, obj({"token": TEXT})), (), auth="user")
    },
    "/api/catalog": {"get": op("gifts, coin packages and money rates", (200, CATALOG), ())},
    "/api/wallet/recharge": {
        "post": op(
            "buy a coin package",
            (200, RECHARGE),
            (403, 409, 422),
            auth="user",
            body=obj({"package_id": TEXT}),
            params=[KEY_HEADER],
        )
    },
    "/api/wallet/transactions": {
        "get": op(
            "the caller's ledger history, newest first",
            (200, obj({"items": list_of(TRANSACTION), "next": nullable(ID)})),
            (400,),
            auth="user",
            params=[
                query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                query("before", {"type": "integer", "minimum": 1, "maximum": 2**62}),
            ],
        )
    },
    "/api/wallet/refunds": {
        "post": op(
            "refund one of the caller's recharges",
            (200, obj({"coins": COUNT}, {"transaction_id": ID, "refund_of": ID})),
            (404, 409, 422),
            auth="user",
            body=obj({"transaction_id": {"type": "integer", "minimum": 1, "maximum": 2**62}}),
            params=[KEY_HEADER],
        )
    },
    "/api/wallet/limits": {
        "get": op("the caller's daily spending limit", (200, ref("Limits")), (), auth="user"),
        "put": op(
            "set a daily spending limit (lowering at once, raising after a cooling-off)",
            (200, ref("Limits")),
            (),
            auth="user",
            body=obj(
                {"daily_coins": nullable({**COUNT, "maximum": 10**9})},
                {"time_zone": nullable({"type": "string", "maxLength": 64})},
            ),
        ),
    },
    "/api/wallet/statement.csv": {"get": STATEMENT},
    "/api/earnings": {
        "get": op(
            "a creator's diamonds from gifts by day and by live",
            (200, EARNINGS),
            (400,),
            auth="user",
            params=[query("from", DATE), query("to", DATE)],
        )
    },
    "/api/rooms": {
        "post": op(
            "go live",
            (201, obj({**ROOM_BASE, "overlay_token": TEXT})),
            (403,),
            auth="user",
            body=obj({"title": TITLE}),
        ),
        "get": op(
            "the live rooms, most viewers first",
            (200, obj({"items": list_of(obj({**ROOM_BASE, "viewers": COUNT}))})),
            (),
        ),
    },
    "/api/rooms/{room_id}": {
        "get": op("one room, live or ended", (200, ref("Room")), (404,), params=[ROOM_ID])
    },
    "/api/rooms/{room_id}/end": {
        "post": op(
            "end the live (host only)",
            (200, obj({"status": {"const": "ended"}})),
            (403, 404),
            auth="user",
            params=[ROOM_ID],
        )
    },
    "/api/rooms/{room_id}/leaderboard": {
        "get": op("this live's top gifters", (200, obj({"top": TOP})), (404,), params=[ROOM_ID])
    },
    "/api/rooms/{room_id}/goal": {
        "put": op(
            "set the room's gift goal (host only)",
            (200, GOAL),
            (403, 404, 409),
            auth="user",
            body=obj(
                {"title": TITLE, "coins": {"type": "integer", "minimum": 1, "maximum": 10**9}}
            ),
            params=[ROOM_ID],
        )
    },
    "/api/rooms/{room_id}/overlay_token": {
        "get": op(
            "the current overlay token (host only)",
            (200, ref("OverlayToken")),
            (403, 404),
            auth="user",
            params=[ROOM_ID],
        ),
        "post": op(
            "a new overlay token; the old one's sockets close with 4401 (host only)",
            (200, ref("OverlayToken")),
            (403, 404),
            auth="user",
            params=[ROOM_ID],
        ),
    },
    "/api/payouts": {
        "post": op(
            "cash out diamonds (two-phase: pending until settled)",
            (202, ref("Payout")),
            (403, 409, 422),
            auth="user",
            body=obj({"diamonds": {"type": "integer", "minimum": 1, "maximum": 10**12}}),
            params=[KEY_HEADER],
        ),
        "get": op(
            "the caller's payouts, newest first",
            (200, obj({"items": list_of(ref("Payout"))})),
            (),
            auth="user",
        ),
    },
    "/api/gifts/{request_id}": {
        "get": op(
            "the outcome of one of the caller's gift requests (404: it took no coins)",
            (200, GIFT_OUTCOME),
            (400, 404),
            auth="user",
            params=[
                {
                    "name": "request_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1},
                }
            ],
        )
    },
    "/api/admin/rooms/{room_id}/gifts": {
        "get": op(
            "a room's gifts as the ledger holds them, oldest first",
            (200, ROOM_GIFTS),
            (400, 403, 404),
            auth="admin",
            params=[
                ROOM_ID,
                query("after", {"type": "integer", "minimum": 0}),
                query("limit", {"type": "integer", "minimum": 1}),
            ],
        )
    },
    "/api/admin/stats": {
        "get": op(
            "the server process's memory, descriptors, tasks, sockets and gift queue",
            (
                200,
                obj(
                    {
                        "rss_bytes": nullable(COUNT),
                        "open_fds": nullable(COUNT),
                        "tasks": COUNT,
                        "ws_connections": COUNT,
                        "rooms_open": COUNT,
                        "gift_queue": COUNT,
                        "gift_batches": COUNT,
                    }
                ),
            ),
            (403,),
            auth="admin",
        )
    },
    "/api/admin/audit": {
        "get": op("the ledger's invariants checked", (200, AUDIT), (403,), auth="admin")
    },
    "/api/admin/payouts": {
        "get": op(
            "pending payouts awaiting review, oldest first",
            (200, obj({"items": list_of(obj({**PAYOUT_FIELDS, "user": ID}))})),
            (400, 403),
            auth="admin",
            params=[query("older_than_s", {"type": "integer", "minimum": 0, "maximum": 10**9})],
        )
    },
    "/api/admin/payouts/{payout_id}/settle": {
        "post": op(
            "settle a pending payout once: paid or failed",
            (200, ref("Payout")),
            (403, 404, 409),
            auth="admin",
            body=obj({"outcome": {"enum": ["paid", "failed"]}}),
            params=[PAYOUT_ID],
        )
    },
}

OPENAPI: Doc = {
    "openapi": "3.1.0",
    "info": {
        "title": "giftcast HTTP API",
        "version": "1",
        "description": "The HTTP half of the giftcast wire contract v1 and its extensions. "
        'Errors are `{"error": {"code", "message"}}`; see docs/protocol.md.',
    },
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "user": {"type": "http", "scheme": "bearer", "description": "a user token"},
            "admin": {"type": "http", "scheme": "bearer", "description": "GIFTCAST_ADMIN_TOKEN"},
        },
    },
}
