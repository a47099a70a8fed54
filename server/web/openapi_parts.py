"""The building blocks of `openapi.py`: schema helpers, the shared schemas, and `op`, which
turns a summary, a success answer and the error statuses into one OpenAPI operation."""

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


def obj(required: dict[str, Doc], optional: dict[str, Doc] | None = None) -> Doc:
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
    }


def nullable(schema: Doc) -> Doc:
    return {"anyOf": [schema, NULL]}


def list_of(item: Doc) -> Doc:
    return {"type": "array", "items": item}


def ref(name: str) -> Doc:
    return {"$ref": f"#/components/schemas/{name}"}


USER_REF = obj({"id": ID, "name": TEXT})
TOP = list_of(obj({"user": USER_REF, "coins": COUNT}))
GOAL = obj({"title": TEXT, "coins": ID, "progress": COUNT})
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
    "Error": obj(
        {
            "error": obj(
                {"code": {"enum": [code.value for code in Code]}, "message": TEXT},
                {"retry_after_ms": COUNT},
            )
        }
    ),
    "Room": obj(
        {**ROOM_BASE, "seq": COUNT, "viewers": COUNT, "top": TOP, "goal": nullable(GOAL)},
        {"coins": COUNT, "diamonds": COUNT, "ended_at": nullable(TIME)},
    ),
    "Payout": obj(PAYOUT_FIELDS, {"settled_at": TIME}),
    "Limits": obj(
        {
            "daily_coins": nullable(COUNT),
            "pending": nullable(
                obj(
                    {"daily_coins": nullable(COUNT), "effective_at": TIME},
                    {"time_zone": TEXT},
                )
            ),
            "spent_today": COUNT,
            "left_today": nullable(COUNT),
            "day_ends_at": TIME,
        },
        {"time_zone": TEXT},
    ),
    "OverlayToken": obj({"overlay_token": TEXT, "version": ID}),
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


def query(name: str, schema: Doc) -> Doc:
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


def json_answer(schema: Doc, description: str = "OK") -> Doc:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def op(
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
    responses: Doc = {str(status): json_answer(schema)}
    body_errors = (400, 413) if body is not None else ()
    auth_errors = (401,) if auth is not None else ()
    for code in sorted({*errors, *body_errors, *auth_errors, 503}):
        responses[str(code)] = json_answer(ref("Error"), WHY[code])
    op: Doc = {"summary": summary, "responses": responses}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    op["security"] = [{auth: []}] if auth is not None else []
    return op


def page(summary: str) -> Doc:
    page = {"description": "the page", "content": {"text/html": {"schema": TEXT}}}
    missing = json_answer(ref("Error"), "the page is not installed with this server")
    return {"summary": summary, "security": [], "responses": {"200": page, "404": missing}}


RECHARGE = obj(
    {"transaction_id": ID, "coins": COUNT},
    {
        "package_id": TEXT,
        "coins_added": ID,
        "price_cents": COUNT,
        "currency": TEXT,
        "provider_reference": TEXT,
    },
)
VALUE = obj(
    {
        "currency": TEXT,
        "paid_millicents": COUNT,
        "host_millicents": COUNT,
        "platform_millicents": INT,
    }
)
TRANSACTION = obj(
    {"id": ID, "kind": {"enum": TRANSACTION_KINDS}, "coins": INT, "diamonds": INT, "at": TIME},
    {"value": VALUE, "coins_cost_millicents": COUNT},
)
GIFT_OUTCOME = obj(
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
ROOM_GIFTS = obj(
    {
        "room": ID,
        "host": USER_REF,
        "items": list_of(
            obj(
                {
                    "transfer": ID,
                    "at": TIME,
                    "sender": USER_REF,
                    "request_id": nullable(TEXT),
                    "seq": nullable(ID),
                    "gift_id": TEXT,
                    "count": ID,
                    "coins": ID,
                    "diamonds": COUNT,
                }
            )
        ),
        "next": nullable(ID),
    }
)
CATALOG = obj(
    {
        "gifts": list_of(
            obj(
                {
                    "id": TEXT,
                    "name": TEXT,
                    "coins": ID,
                    "streakable": {"type": "boolean"},
                    "animation": TEXT,
                }
            )
        ),
        "packages": list_of(obj({"id": TEXT, "coins": ID, "price_cents": COUNT, "currency": TEXT})),
        "diamonds_per_coin": ID,
        "cents_per_100_diamonds": COUNT,
        "payout_minimum_diamonds": COUNT,
        "streak_window_ms": COUNT,
    }
)
EARNINGS = obj(
    {
        "from": DATE,
        "to": DATE,
        "diamonds": COUNT,
        "cents": COUNT,
        "cents_per_100_diamonds": COUNT,
        "by_day": list_of(obj({"day": DATE, "diamonds": COUNT, "cents": COUNT, "gifts": COUNT})),
        "by_live": list_of(
            obj(
                {
                    "room": obj({"id": ID, "title": TEXT, "started_at": TIME}),
                    "diamonds": COUNT,
                    "gifts": COUNT,
                    "cents": COUNT,
                }
            )
        ),
    }
)
AUDIT = obj(
    {
        "balanced": {"type": "boolean"},
        "totals": {"type": "object", "additionalProperties": {"type": "object"}},
        "violations": list_of(obj({"rule": TEXT, "account": nullable(TEXT), "detail": TEXT})),
        "transfers": COUNT,
        "entries": COUNT,
    }
)
TITLE = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"\S"}
STATEMENT = op(
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
