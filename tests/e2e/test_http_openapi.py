"""`GET /openapi.json`: the HTTP API as OpenAPI 3.1, and the app's routes agree with it.

Both ways: every HTTP route and method the app serves is in the document, and every path and
method in the document is served. WebSocket routes are not HTTP calls and are left out.
"""

from __future__ import annotations

import re
from pathlib import Path

import schemathesis
from schemathesis.core.result import Ok
from starlette.routing import Mount, Route, WebSocketRoute

from server.web.app import create_app
from server.web.openapi import OPENAPI
from tests.e2e.http_helpers import ok_json
from tests.support.client import Api
from tests.support.live import test_settings as settings_in

METHODS = {"get", "put", "post", "delete", "patch"}


def served(tmp_path: Path) -> set[tuple[str, str]]:
    """(path, method) for every HTTP route of the app as `create_app` builds it."""
    app = create_app(settings_in(tmp_path / "data"))
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, WebSocketRoute):
            continue
        if isinstance(route, Mount):
            found.add((f"{route.path}/{{path}}", "get"))  # static files answer GET (and HEAD)
            continue
        assert isinstance(route, Route), route
        path = re.sub(r":\w+}", "}", route.path)  # `{id:path}` is `{id}` in OpenAPI
        for method in route.methods or ():
            if method != "HEAD":
                found.add((path, method.lower()))
    return found


def documented() -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in OPENAPI["paths"].items()
        for method in item
        if method in METHODS
    }


def test_every_served_route_is_documented(tmp_path: Path) -> None:
    missing = served(tmp_path) - documented()
    assert not missing, f"served but not in /openapi.json: {sorted(missing)}"


def test_every_documented_route_is_served(tmp_path: Path) -> None:
    extra = documented() - served(tmp_path)
    assert not extra, f"in /openapi.json but not served: {sorted(extra)}"


def test_the_document_is_valid_openapi_with_every_error_answer_described() -> None:
    schema = schemathesis.openapi.from_dict(OPENAPI)
    operations = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in operations), operations
    assert len(operations) == len(documented())
    for path, item in OPENAPI["paths"].items():
        for method, op in item.items():
            statuses = set(op["responses"])
            assert any(s.startswith("2") for s in statuses), (method, path)
            if path.startswith("/api/"):
                # Storage may be busy on any API call, and then it says so.
                assert "503" in statuses, (method, path)
            if op.get("security"):
                assert "401" in statuses, (method, path)
            if "requestBody" in op:
                assert {"400", "413"} <= statuses, (method, path)


async def test_the_server_serves_the_document(api: Api) -> None:
    r = await api.call("GET", "/openapi.json")
    assert ok_json(r) == OPENAPI
