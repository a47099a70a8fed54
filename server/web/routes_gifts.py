"""`GET /api/gifts/{request_id}` (extension): the outcome of one of the caller's gift requests.

A client holding a gift request it never got an answer for (the socket dropped, the server
restarted, or the room ended before the answer came) asks here instead of resending over a
room socket it may no longer be able to open. Only accepted gifts are stored, so "not found"
means the request took no coins; sending it again with the same id is always safe.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.domain.errors import Code
from server.domain.pricing import gift_value
from server.protocol.messages import REQUEST_ID_CHARS_MAX
from server.web.http_util import guarded, json_response, refused
from server.web.routes import _caller, rt


@guarded
async def gift_outcome(request: Request) -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    request_id = request.path_params["request_id"]
    if not 1 <= len(request_id) <= REQUEST_ID_CHARS_MAX:
        return refused(Code.INVALID, f"a gift request id is 1-{REQUEST_ID_CHARS_MAX} characters")
    runtime = rt(request)
    ok = await runtime.store.find_gift(caller.id, request_id)
    if ok is None:
        return refused(
            Code.NOT_FOUND,
            f"no gift with id {request_id!r} was accepted from you: it took no coins. Sending"
            " it again with the same id is safe (an id is never charged twice)",
        )
    value = gift_value(ok.cost_millicents, ok.diamonds, runtime.rates)
    return json_response(
        {
            "id": request_id,
            "status": "accepted",
            "seq": ok.seq,
            "coins": ok.coins_after,
            "coins_spent": ok.coins_spent,
            "diamonds": ok.diamonds,
            "value": value.doc(runtime.catalog.currency),
        }
    )


GIFT_ROUTES = [Route("/api/gifts/{request_id:path}", gift_outcome, methods=["GET"])]
