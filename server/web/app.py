"""The ASGI app factory. `create_app(settings)` wires the runtime in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from server.config import Settings
from server.domain.errors import Code
from server.services.clock import Clock, system_clock
from server.services.payments import PaymentProvider
from server.web.http_util import JSONBytes, refused
from server.web.openapi import OPENAPI
from server.web.routes import ROUTES
from server.web.routes_gifts import GIFT_ROUTES
from server.web.runtime import Runtime
from server.web.stats import STATS_ROUTES
from server.web.ws import WS_ROUTES

CLIENT_DIR = Path(__file__).resolve().parent.parent.parent / "client_demo"


async def _page(name: str) -> Response:
    path = CLIENT_DIR / name
    if not path.is_file():
        return refused(Code.NOT_FOUND, f"{name} is not installed with this server")
    return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-cache"})


async def index(request: Request) -> Response:
    return await _page("index.html")


async def overlay(request: Request) -> Response:
    return await _page("overlay.html")


OPENAPI_BYTES = orjson.dumps(OPENAPI)


async def openapi(request: Request) -> Response:
    """The HTTP API as OpenAPI 3.1 (`server/web/openapi.py`)."""
    return JSONBytes(OPENAPI_BYTES)


class ClientFiles(StaticFiles):
    """The pages' scripts and styles: revalidated on each load, so an upgrade is seen at once."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return refused(Code.NOT_FOUND, f"no route for {request.method} {request.url.path}")
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        response = refused(
            Code.INVALID,
            f"{request.method} is not allowed on {request.url.path}; use {allow or 'another'}",
            405,
        )
        if allow:
            response.headers["Allow"] = allow
        return response
    return refused(Code.INVALID, str(exc.detail), exc.status_code)


def create_app(
    settings: Settings, clock: Clock = system_clock, provider: PaymentProvider | None = None
) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = await Runtime.start(settings, clock, provider)
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.close()

    routes: list[Route | Mount] = [
        Route("/", index, methods=["GET"]),
        Route("/overlay", overlay, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *ROUTES,
        *GIFT_ROUTES,
        *STATS_ROUTES,
        *WS_ROUTES,  # type: ignore[list-item]
    ]
    if CLIENT_DIR.is_dir():
        routes.append(Mount("/static", ClientFiles(directory=CLIENT_DIR), name="static"))
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
