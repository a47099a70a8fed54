"""Peer baseline: the naive fan-out, a Starlette route awaiting `send_text` once per viewer.

It follows the peer protocol described in `scripts/peers/ws_broadcast.py` (`/publish`, viewers
on any other path, a welcome, the `peer listening on 127.0.0.1:PORT` line, SIGTERM).

This is the loop most first versions of a chat or gift server start with: for each message, in
the publisher's own task, `for ws in viewers: await ws.send_text(message)`. Each viewer's send
is awaited before the next, so the room goes at the pace of the sends, one at a time. It runs
on uvicorn with the same WebSocket implementation as giftcast (`websockets-sansio`), so the
difference measured is the fan-out, not the transport.
"""

from __future__ import annotations

import argparse
import socket
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

WELCOME = '{"type":"welcome"}'

viewers: set[WebSocket] = set()


async def publisher(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            message = await ws.receive_text()
            for viewer in list(viewers):  # a snapshot: viewers may leave during the loop
                try:
                    await viewer.send_text(message)
                except Exception:  # a viewer gone mid-send: drop it and go on
                    viewers.discard(viewer)
    except WebSocketDisconnect:
        return


async def viewer(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_text(WELCOME)
    viewers.add(ws)
    try:
        while True:
            if (await ws.receive())["type"] == "websocket.disconnect":
                return
    finally:
        viewers.discard(ws)


app = Starlette(
    routes=[WebSocketRoute("/publish", publisher), WebSocketRoute("/{path:path}", viewer)]
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    port = p.parse_args(argv).port
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(
        app,
        ws="websockets-sansio",
        lifespan="off",
        access_log=False,
        log_level="warning",
        backlog=1024,
    )
    sock.listen(1024)  # connections queue from here on, before uvicorn starts accepting
    print(f"peer listening on 127.0.0.1:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])  # uvicorn's own SIGTERM handling
    return 0


if __name__ == "__main__":
    sys.exit(main())
