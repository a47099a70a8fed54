"""The HTTP API as an OpenAPI 3.1 document, served at `GET /openapi.json`.

Data only: every HTTP route of `routes.py` and `app.py`, its parameters, bodies, and every
status it can answer with the schema of that answer. WebSockets are not described here (see
docs/protocol.md). Two tests hold it to the server: `tests/e2e/test_http_openapi.py` checks
that the document and the app's routes agree both ways, and `tests/e2e/test_http_schemathesis.py`
sends generated requests to a real server and checks each answer against the document.
Success answers may carry more fields than listed (clients ignore unknown fields).
"""

from __future__ import annotations

from typing import Any

from server.domain.errors import Code

Doc = dict[str, Any]

INT: Doc = {"type": "integer"}
COUNT: Doc = {"type": "integer", "minimum": 0}
ID: Doc = {"type": "integer", "minimum": 1}
TEXT: Doc = {"type": "string"}
TIME: Doc = {"type": "string", "format": "date-time"}
DATE: Doc = {"type": "string", "format": "date"}
NULL: Doc = {"type": "null"}


def _obj(required: dict[str, Doc], optional: dict[str, Doc] | None = None) -> Doc:
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
    }


def _nullable(schema: Doc) -> Doc:
    return {"anyOf": [schema, NULL]}


def _list(item: Doc) -> Doc:
    return {"type": "array", "items": item}


def _ref(name: str) -> Doc:
    return {"$ref": f"#/components/schemas/{name}"}


USER_REF = _obj({"id": ID, "name": TEXT})
TOP = _list(_obj({"user": USER_REF, "coins": COUNT}))
GOAL = _obj({"title": TEXT, "coins": ID, "progress": COUNT})
ROOM_BASE = {
    "id": ID,
    "title": TEXT,
    "host": USER_REF,
    "status": {"enum": ["live", "ended"]},
    "started_at": TIME,
}
PAYOUT_FIELDS = {
    "id": ID,
    "diamonds": ID,
    "cents": ID,
    "status": {"enum": ["pending", "paid", "failed"]},
    "created_at": TIME,
}
TRANSACTION_KINDS = [
    "recharge",
    "gift_sent",
    "gift_received",
    "payout",
    "payout_reversed",
    "refund",
]
SCHEMAS: Doc = {
    "Error": _obj(
        {
            "error": _obj(
                {"code": {"enum": [code.value for code in Code]}, "message": TEXT},
                {"retry_after_ms": COUNT},
            )
        }
    ),
    "Room": _obj(
        {**ROOM_BASE, "seq": COUNT, "viewers": COUNT, "top": TOP, "goal": _nullable(GOAL)},
        {"coins": COUNT, "diamonds": COUNT, "ended_at": _nullable(TIME)},
    ),
    "Payout": _obj(PAYOUT_FIELDS, {"settled_at": TIME}),
    "Limits": _obj(
        {
            "daily_coins": _nullable(COUNT),
            "pending": _nullable(
                _obj(
                    {"daily_coins": _nullable(COUNT), "effective_at": TIME},
                    {"time_zone": TEXT},
                )
            ),
            "spent_today": COUNT,
            "left_today": _nullable(COUNT),
            "day_ends_at": TIME,
        },
        {"time_zone": TEXT},
    ),
    "OverlayToken": _obj({"overlay_token": TEXT, "version": ID}),
}

KEY_HEADER: Doc = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "1-64 printable ASCII characters, new for each distinct request",
    "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[ -~]+$"},
}
ROOM_ID: Doc = {"name": "room_id", "in": "path", "required": True, "schema": ID}
PAYOUT_ID: Doc = {"name": "payout_id", "in": "path", "required": True, "schema": ID}


def _query(name: str, schema: Doc) -> Doc:
    return {"name": name, "in": "query", "required": False, "schema": schema}


WHY = {
    400: "malformed request (`invalid`, `idempotency_key_required`)",
    401: "missing, forged or expired token (`unauthorized`)",
    403: "not allowed (`forbidden`, `age_restricted`)",
    404: "no such thing (`not_found`)",
    409: "conflict (`name_taken`, `idempotency_conflict`, `already_*`, `room_not_live`)",
    413: "the body is larger than the limit (`invalid`)",
    422: "well-formed, but the rules refuse it",
    503: "storage busy or the server shutting down (`unavailable`): retry",
}


def _json(schema: Doc, description: str = "OK") -> Doc:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(
    summary: str,
    ok: tuple[int, Doc],
    errors: tuple[int, ...],
    *,
    auth: str | None = None,
    body: Doc | None = None,
    params: list[Doc] | None = None,
) -> Doc:
    """One operation: its success answer, the error statuses it can give, auth and inputs."""
    status, schema = ok
    responses: Doc = {str(status): _json(schema)}
    body_errors = (400, 413) if body is not None else ()
    auth_errors = (401,) if auth is not None else ()
    for code in sorted({*errors, *body_errors, *auth_errors, 503}):
        responses[str(code)] = _json(_ref("Error"), WHY[code])
    op: Doc = {"summary": summary, "responses": responses}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    op["security"] = [{auth: []}] if auth is not None else []
    return op


def _page(summary: str) -> Doc:
    page = {"description": "the page", "content": {"text/html": {"schema": TEXT}}}
    missing = _json(_ref("Error"), "the page is not installed with this server")
    return {"summary": summary, "security": [], "responses": {"200": page, "404": missing}}


RECHARGE = _obj(
    {"transaction_id": ID, "coins": COUNT},
    {
        "package_id": TEXT,
        "coins_added": ID,
        "price_cents": COUNT,
        "currency": TEXT,
        "provider_reference": TEXT,
    },
)
VALUE = _obj(
    {
        "currency": TEXT,
        "paid_millicents": COUNT,
        "host_millicents": COUNT,
        "platform_millicents": INT,
    }
)
TRANSACTION = _obj(
    {"id": ID, "kind": {"enum": TRANSACTION_KINDS}, "coins": INT, "diamonds": INT, "at": TIME},
    {"value": VALUE, "coins_cost_millicents": COUNT},
)
GIFT_OUTCOME = _obj(
    {
        "id": TEXT,
        "status": {"const": "accepted"},
        "seq": ID,
        "coins": COUNT,
        "coins_spent": ID,
        "diamonds": COUNT,
        "value": VALUE,
    }
)
ROOM_GIFTS = _obj(
    {
        "room": ID,
        "host": USER_REF,
        "items": _list(
            _obj(
                {
                    "transfer": ID,
                    "at": TIME,
                    "sender": USER_REF,
                    "request_id": _nullable(TEXT),
                    "seq": _nullable(ID),
                    "gift_id": TEXT,
                    "count": ID,
                    "coins": ID,
                    "diamonds": COUNT,
                }
            )
        ),
        "next": _nullable(ID),
    }
)
CATALOG = _obj(
    {
        "gifts": _list(
            _obj(
                {
                    "id": TEXT,
                    "name": TEXT,
                    "coins": ID,
                    "streakable": {"type": "boolean"},
                    "animation": TEXT,
                }
            )
        ),
        "packages": _list(_obj({"id": TEXT, "coins": ID, "price_cents": COUNT, "currency": TEXT})),
        "diamonds_per_coin": ID,
        "cents_per_100_diamonds": COUNT,
        "payout_minimum_diamonds": COUNT,
        "streak_window_ms": COUNT,
    }
)
EARNINGS = _obj(
    {
        "from": DATE,
        "to": DATE,
        "diamonds": COUNT,
        "cents": COUNT,
        "cents_per_100_diamonds": COUNT,
        "by_day": _list(_obj({"day": DATE, "diamonds": COUNT, "cents": COUNT, "gifts": COUNT})),
        "by_live": _list(
            _obj(
                {
                    "room": _obj({"id": ID, "title": TEXT, "started_at": TIME}),
                    "diamonds": COUNT,
                    "gifts": COUNT,
                    "cents": COUNT,
                }
            )
        ),
    }
)
AUDIT = _obj(
    {
        "balanced": {"type": "boolean"},
        "totals": {"type": "object", "additionalProperties": {"type": "object"}},
        "violations": _list(_obj({"rule": TEXT, "account": _nullable(TEXT), "detail": TEXT})),
        "transfers": COUNT,
        "entries": COUNT,
    }
)
TITLE = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"\S"}
STATEMENT = _op(
    "a month's ledger entries as CSV",
    (200, TEXT),
    (400,),
    auth="user",
    params=[
        {
            "name": "month",
            "in": "query",
            "required": True,
            "schema": {"type": "string", "pattern": "^2[0-9]{3}-(0[1-9]|1[0-2])$"},
        }
    ],
)
STATEMENT["responses"]["200"] = {
    "description": "a header row, then one row per ledger entry of the month",
    "content": {"text/csv": {"schema": TEXT}},
}

PATHS: Doc = {
    "/healthz": {"get": _op("the server accepts work", (200, _obj({"ok": {"const": True}})), ())},
    "/openapi.json": {
        "get": {
            "summary": "this document",
            "security": [],
            "responses": {"200": _json({"type": "object"})},
        }
    },
    "/": {"get": _page("the browser demo app")},
    "/overlay": {
        "get": {
            **_page("the streamer overlay for an OBS browser source"),
            "parameters": [_query("room", TEXT), _query("token", TEXT)],
        }
    },
    "/static/{path}": {
        "get": {
            "summary": "the pages' scripts and styles",
            "security": [],
            "parameters": [{"name": "path", "in": "path", "required": True, "schema": TEXT}],
            "responses": {
                "200": {"description": "the file", "content": {"*/*": {"schema": {}}}},
                "404": _json(_ref("Error"), WHY[404]),
            },
        }
    },
    "/api/users": {
        "post": _op(
            "sign up",
            (201, _obj({"id": ID, "name": TEXT, "token": TEXT})),
            (409,),
            body=_obj(
                {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,32}$"},
                    "birthdate": DATE,
                }
            ),
        )
    },
    "/api/me": {
        "get": _op(
            "the caller's account and balances",
            (
                200,
                _obj(
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
        "post": _op("a fresh user token", (200, _obj({"token": TEXT})), (), auth="user")
    },
    "/api/catalog": {"get": _op("gifts, coin packages and money rates", (200, CATALOG), ())},
    "/api/wallet/recharge": {
        "post": _op(
            "buy a coin package",
            (200, RECHARGE),
            (403, 409, 422),
            auth="user",
            body=_obj({"package_id": TEXT}),
            params=[KEY_HEADER],
        )
    },
    "/api/wallet/transactions": {
        "get": _op(
            "the caller's ledger history, newest first",
            (200, _obj({"items": _list(TRANSACTION), "next": _nullable(ID)})),
            (400,),
            auth="user",
            params=[
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                _query("before", {"type": "integer", "minimum": 1, "maximum": 2**62}),
            ],
        )
    },
    "/api/wallet/refunds": {
        "post": _op(
            "refund one of the caller's recharges",
            (200, _obj({"coins": COUNT}, {"transaction_id": ID, "refund_of": ID})),
            (404, 409, 422),
            auth="user",
            body=_obj({"transaction_id": {"type": "integer", "minimum": 1, "maximum": 2**62}}),
            params=[KEY_HEADER],
        )
    },
    "/api/wallet/limits": {
        "get": _op("the caller's daily spending limit", (200, _ref("Limits")), (), auth="user"),
        "put": _op(
            "set a daily spending limit (lowering at once, raising after a cooling-off)",
            (200, _ref("Limits")),
            (),
            auth="user",
            body=_obj(
                {"daily_coins": _nullable({**COUNT, "maximum": 10**9})},
                {"time_zone": _nullable({"type": "string", "maxLength": 64})},
            ),
        ),
    },
    "/api/wallet/statement.csv": {"get": STATEMENT},
    "/api/earnings": {
        "get": _op(
            "a creator's diamonds from gifts by day and by live",
            (200, EARNINGS),
            (400,),
            auth="user",
            params=[_query("from", DATE), _query("to", DATE)],
        )
    },
    "/api/rooms": {
        "post": _op(
            "go live",
            (201, _obj({**ROOM_BASE, "overlay_token": TEXT})),
            (403,),
            auth="user",
            body=_obj({"title": TITLE}),
        ),
        "get": _op(
            "the live rooms, most viewers first",
            (200, _obj({"items": _list(_obj({**ROOM_BASE, "viewers": COUNT}))})),
            (),
        ),
    },
    "/api/rooms/{room_id}": {
        "get": _op("one room, live or ended", (200, _ref("Room")), (404,), params=[ROOM_ID])
    },
    "/api/rooms/{room_id}/end": {
        "post": _op(
            "end the live (host only)",
            (200, _obj({"status": {"const": "ended"}})),
            (403, 404),
            auth="user",
            params=[ROOM_ID],
        )
    },
    "/api/rooms/{room_id}/leaderboard": {
        "get": _op("this live's top gifters", (200, _obj({"top": TOP})), (404,), params=[ROOM_ID])
    },
    "/api/rooms/{room_id}/goal": {
        "put": _op(
            "set the room's gift goal (host only)",
            (200, GOAL),
            (403, 404, 409),
            auth="user",
            body=_obj(
                {"title": TITLE, "coins": {"type": "integer", "minimum": 1, "maximum": 10**9}}
            ),
            params=[ROOM_ID],
        )
    },
    "/api/rooms/{room_id}/overlay_token": {
        "get": _op(
            "the current overlay token (host only)",
            (200, _ref("OverlayToken")),
            (403, 404),
            auth="user",
            params=[ROOM_ID],
        ),
        "post": _op(
            "a new overlay token; the old one's sockets close with 4401 (host only)",
            (200, _ref("OverlayToken")),
            (403, 404),
            auth="user",
            params=[ROOM_ID],
        ),
    },
    "/api/payouts": {
        "post": _op(
            "cash out diamonds (two-phase: pending until settled)",
            (202, _ref("Payout")),
            (403, 409, 422),
            auth="user",
            body=_obj({"diamonds": {"type": "integer", "minimum": 1, "maximum": 10**12}}),
            params=[KEY_HEADER],
        ),
        "get": _op(
            "the caller's payouts, newest first",
            (200, _obj({"items": _list(_ref("Payout"))})),
            (),
            auth="user",
        ),
    },
    "/api/gifts/{request_id}": {
        "get": _op(
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
        "get": _op(
            "a room's gifts as the ledger holds them, oldest first",
            (200, ROOM_GIFTS),
            (400, 403, 404),
            auth="admin",
            params=[
                ROOM_ID,
                _query("after", {"type": "integer", "minimum": 0}),
                _query("limit", {"type": "integer", "minimum": 1}),
            ],
        )
    },
    "/api/admin/audit": {
        "get": _op("the ledger's invariants checked", (200, AUDIT), (403,), auth="admin")
    },
    "/api/admin/payouts": {
        "get": _op(
            "pending payouts awaiting review, oldest first",
            (200, _obj({"items": _list(_obj({**PAYOUT_FIELDS, "user": ID}))})),
            (400, 403),
            auth="admin",
            params=[_query("older_than_s", {"type": "integer", "minimum": 0, "maximum": 10**9})],
        )
    },
    "/api/admin/payouts/{payout_id}/settle": {
        "post": _op(
            "settle a pending payout once: paid or failed",
            (200, _ref("Payout")),
            (403, 404, 409),
            auth="admin",
            body=_obj({"outcome": {"enum": ["paid", "failed"]}}),
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
