// Peer baseline: a Node `ws` server, the usual alternative for WebSocket fan-out.
//
// It follows the peer protocol described in scripts/peers/ws_broadcast.py: `/publish` is the
// publisher, whose every message is sent verbatim to every viewer connected at that moment;
// any other path is a viewer, sent {"type":"welcome"} and then only receiving; one line
// `peer listening on 127.0.0.1:PORT` on stdout; SIGTERM stops it.
//
// The fan-out is the one in the `ws` README ("Server broadcast"): for each message, `send` to
// every open client. Usage: node server.js [--port PORT]
'use strict';

const { WebSocketServer, WebSocket } = require('ws');

const WELCOME = '{"type":"welcome"}';
const portFlag = process.argv.indexOf('--port');
const port = portFlag >= 0 ? Number(process.argv[portFlag + 1]) : 0;

const viewers = new Set();
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  backlog: 1024,
  perMessageDeflate: false,
  maxPayload: 1 << 20,
  clientTracking: false,
});

wss.on('connection', (ws, req) => {
  ws.on('error', () => viewers.delete(ws));
  if (req.url === '/publish') {
    ws.on('message', (data, isBinary) => {
      for (const viewer of viewers) {
        if (viewer.readyState === WebSocket.OPEN) viewer.send(data, { binary: isBinary });
      }
    });
    return;
  }
  ws.send(WELCOME);
  viewers.add(ws);
  ws.on('close', () => viewers.delete(ws));
});

wss.on('listening', () => {
  console.log(`peer listening on 127.0.0.1:${wss.address().port}`);
});

process.on('SIGTERM', () => {
  for (const viewer of viewers) viewer.terminate();
  wss.close(() => process.exit(0));
});
