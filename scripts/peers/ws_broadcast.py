"""Peer baseline (the Python floor): a bare `websockets` server fanning out with `broadcast`.

The peer protocol, shared by every server under `scripts/peers/`:

- it listens on 127.0.0.1 (`--port`, 0 for any free port) and prints one line
  `peer listening on 127.0.0.1:PORT` on stdout once it accepts connections;
- a WebSocket on `/publish` is the publisher: each text message it sends is sent, verbatim, as
  one frame to every viewer connected at that moment;
- a WebSocket on any other path is a viewer: it is sent `{"type":"welcome"}`, then joins the
  viewers and only receives;
- SIGTERM stops it (the exit status is not judged).

This one is what the `websockets` documentation recommends for fan-out: `broadcast` writes the
frame to every connection synchronously, without waiting for any of them (no backpressure, so a
slow viewer's buffer grows instead of delaying the others).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

WELCOME = '{"type":"welcome"}'
MESSAGE_BYTES_MAX = 1 << 20


async def serve_peer(port: int) -> None:
    viewers: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path == "/publish":
            async for message in ws:
                broadcast(viewers, message)
            return
        await ws.send(WELCOME)
        viewers.add(ws)
        try:
            await ws.wait_closed()
        finally:
            viewers.discard(ws)

    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(
        handler, "127.0.0.1", port, compression=None, max_size=MESSAGE_BYTES_MAX, backlog=1024
    ) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(f"peer listening on 127.0.0.1:{bound}", flush=True)
        await stop


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    asyncio.run(serve_peer(p.parse_args(argv).port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
