// A room WebSocket that keeps itself connected and delivers every numbered room event
// exactly once, in order.
//
// - Reconnects by itself with exponential backoff (capped, with jitter), resuming with
//   `&since=<last seq seen>` so nothing is missed.
// - Flattens `batch` frames; drops an event whose seq was already seen; on a seq gap it
//   drops the socket and reconnects with `since` (the server replays the missing events).
// - `resync` (history no longer reaches back that far): resumes from the welcome's seq and
//   asks the owner to reload the room over HTTP.
// - Close codes: 4404 (room unknown or ended) and a seen `room_ended` end it for good; 4401
//   (bad token) and 4403 stop it and tell the owner; everything else reconnects.
// - Heartbeat: an application `ping` when quiet; no answer in time means a dead link.

export const Close = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  TOO_BIG: 1009,
  TRY_AGAIN_LATER: 1013,
  BAD_REQUEST: 4400,
  UNAUTHORIZED: 4401,
  FORBIDDEN: 4403,
  NOT_FOUND: 4404,
  TOO_MANY: 4429,
});

const NUMBERED = new Set(['gift', 'streak_end', 'room_ended']);

export class LiveSocket {
  /**
   * @param {object} opts
   * @param {(since: number|null) => string} opts.url  the socket URL, with `since` when given
   * @param {number|null} [opts.since]  resume after this seq on the first connection
   * @param {(welcome: object, info: object) => void} [opts.onWelcome]
   * @param {(event: object, info: {replayed: boolean, replaying: number}) => void} [opts.onEvent]
   *        numbered events (once each, in order) and unnumbered ones (viewers, top, goal)
   * @param {(msg: object) => void} [opts.onReply]  gift_ok / error / anything else
   * @param {(welcome: object) => void} [opts.onResync]
   * @param {(seq: number) => void} [opts.onSeq]  after each numbered event is handled
   * @param {(status: string, detail?: object) => void} [opts.onStatus]
   * @param {(why: 'ended'|'unauthorized'|'forbidden', code: number, reason: string) => void} [opts.onEnd]
   */
  constructor(opts) {
    this.opts = {
      baseDelayMs: 500,
      maxDelayMs: 15000,
      pingAfterMs: 20000,
      pongTimeoutMs: 10000,
      ...opts,
    };
    this.lastSeq = Number.isInteger(opts.since) ? opts.since : null;
    this.ws = null;
    this.attempt = 0;
    this.stopped = true;
    this.ended = false;
    this.welcome = null;
    this.welcomeSeq = null;
    this.sinceAtConnect = null;
    this.timer = null;
    this.heartbeat = null;
    this.welcomeTimer = null;
    this.lastHeard = 0;
    this.pingSentAt = 0;
    this.openedAt = 0;
    this.status = 'idle';
    this.onOnline = () => {
      if (!this.stopped && !this.ws) this.connectNow();
    };
  }

  /** True once the welcome of the current connection has arrived. */
  get ready() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.welcome !== null;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener('online', this.onOnline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    clearTimeout(this.timer);
    this.timer = null;
    this.stopHeartbeat();
    if (this.ws) this.abandon(this.ws, Close.NORMAL, 'leaving');
    this.ws = null;
  }

  /** Reconnect at once (e.g. the network came back). */
  connectNow() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) this.abandon(this.ws, 4000, 'reconnecting');
    this.ws = null;
    this.connect();
  }

  send(message) {
    if (!this.ready) return false;
    try {
      this.ws.send(JSON.stringify(message));
      return true;
    } catch {
      return false;
    }
  }

  setStatus(status, detail = {}) {
    this.status = status;
    this.opts.onStatus?.(status, detail);
  }

  connect() {
    this.timer = null;
    if (this.stopped) return;
    this.setStatus(this.attempt === 0 ? 'connecting' : 'reconnecting', { attempt: this.attempt });
    const since = this.lastSeq;
    this.sinceAtConnect = since;
    this.welcome = null;
    let ws;
    try {
      ws = new WebSocket(this.opts.url(since));
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onmessage = (e) => this.onFrame(ws, e.data);
    ws.onclose = (e) => this.onClose(ws, e.code, e.reason);
    ws.onerror = () => {}; // a close event always follows
    // A socket that opens but never sends its welcome (a stalled proxy, say) is dead too:
    // the heartbeat only starts with the welcome, so give up on it after the pong timeout.
    clearTimeout(this.welcomeTimer);
    this.welcomeTimer = setTimeout(() => {
      if (this.ws !== ws || this.welcome !== null) return;
      this.abandon(ws, 4000, 'no welcome');
      this.ws = null;
      this.stopHeartbeat();
      this.scheduleReconnect(true);
    }, this.opts.pongTimeoutMs);
  }

  abandon(ws, code, reason) {
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = null;
    try {
      ws.close(code, reason);
    } catch {
      /* already closed */
    }
  }

  onFrame(ws, data) {
    if (ws !== this.ws) return;
    this.lastHeard = Date.now();
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg && msg.type === 'batch' && Array.isArray(msg.events)) {
      for (const event of msg.events) {
        if (!this.dispatch(ws, event)) return;
      }
      return;
    }
    this.dispatch(ws, msg);
  }

  /** Handle one message; false when the socket was dropped (stop reading this frame). */
  dispatch(ws, msg) {
    if (!msg || typeof msg !== 'object') return true;
    switch (msg.type) {
      case 'welcome': {
        this.welcome = msg;
        this.welcomeSeq = Number.isInteger(msg.seq) ? msg.seq : 0;
        if (this.lastSeq === null) this.lastSeq = this.welcomeSeq;
        this.openedAt = Date.now();
        this.startHeartbeat();
        this.setStatus('open', { resumed: this.sinceAtConnect !== null });
        this.opts.onWelcome?.(msg, {
          resumed: this.sinceAtConnect !== null,
          replaying: Math.max(0, this.welcomeSeq - (this.sinceAtConnect ?? this.welcomeSeq)),
        });
        return true;
      }
      case 'resync': {
        // The server cannot replay from where we were: take its present as our own.
        this.lastSeq = this.welcomeSeq;
        this.opts.onSeq?.(this.lastSeq);
        this.opts.onResync?.(this.welcome);
        return true;
      }
      case 'pong':
        return true;
      default:
        break;
    }
    if (NUMBERED.has(msg.type) && Number.isInteger(msg.seq)) {
      if (this.lastSeq !== null && msg.seq <= this.lastSeq) return true; // seen already
      if (this.lastSeq !== null && msg.seq > this.lastSeq + 1) {
        // A hole: never skip an event. Reconnect and let the server replay from lastSeq.
        this.setStatus('reconnecting', { gap: [this.lastSeq + 1, msg.seq - 1] });
        this.abandon(ws, 4000, 'seq gap');
        this.ws = null;
        this.stopHeartbeat();
        this.scheduleReconnect(true);
        return false;
      }
      this.lastSeq = msg.seq;
      if (msg.type === 'room_ended') this.ended = true;
      const replayed = this.welcomeSeq !== null && msg.seq <= this.welcomeSeq;
      const replaying = replayed ? this.welcomeSeq - (this.sinceAtConnect ?? this.welcomeSeq) : 0;
      try {
        this.opts.onEvent?.(msg, { replayed, replaying });
      } finally {
        this.opts.onSeq?.(this.lastSeq);
      }
      return true;
    }
    if (msg.type === 'viewers' || msg.type === 'top' || msg.type === 'goal') {
      this.opts.onEvent?.(msg, { replayed: false, replaying: 0 });
      return true;
    }
    this.opts.onReply?.(msg);
    return true;
  }

  onClose(ws, code, reason) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.welcome = null;
    this.stopHeartbeat();
    if (this.stopped) return;
    if (this.ended || code === Close.NOT_FOUND) {
      this.finish('ended', code, reason);
      return;
    }
    if (code === Close.UNAUTHORIZED) {
      this.finish('unauthorized', code, reason);
      return;
    }
    if (code === Close.FORBIDDEN) {
      this.finish('forbidden', code, reason);
      return;
    }
    if (code === Close.BAD_REQUEST) this.lastSeq = null; // our `since` was refused: start afresh
    // A connection that stayed up a while earns a fresh backoff.
    if (this.openedAt && Date.now() - this.openedAt > 10000) this.attempt = 0;
    this.scheduleReconnect(false, code === Close.TOO_MANY ? 5000 : 0);
  }

  finish(why, code, reason) {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    this.setStatus(why, { code, reason });
    this.opts.onEnd?.(why, code, reason);
  }

  scheduleReconnect(soon = false, floorMs = 0) {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const { baseDelayMs, maxDelayMs } = this.opts;
    const exp = Math.min(maxDelayMs, baseDelayMs * 2 ** this.attempt);
    let delay = soon && this.attempt === 0 ? 0 : Math.round(exp * (0.75 + Math.random() * 0.5));
    delay = Math.min(maxDelayMs, Math.max(delay, floorMs));
    this.attempt += 1;
    const offline = navigator.onLine === false;
    this.setStatus(offline ? 'offline' : 'reconnecting', { inMs: delay, attempt: this.attempt });
    this.timer = setTimeout(() => this.connect(), delay);
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.pingSentAt = 0;
    this.heartbeat = setInterval(() => {
      const ws = this.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      const now = Date.now();
      const { pingAfterMs, pongTimeoutMs } = this.opts;
      if (this.pingSentAt && this.lastHeard < this.pingSentAt) {
        if (now - this.pingSentAt > pongTimeoutMs) {
          // Nothing heard since our ping: the link is dead even if the browser does not know.
          this.abandon(ws, 4000, 'no pong');
          this.ws = null;
          this.welcome = null;
          this.stopHeartbeat();
          this.scheduleReconnect(true);
        }
        return;
      }
      if (now - this.lastHeard >= pingAfterMs) {
        this.pingSentAt = now;
        try {
          ws.send('{"type":"ping"}');
        } catch {
          /* the close event will follow */
        }
      }
    }, 2500);
  }

  stopHeartbeat() {
    clearInterval(this.heartbeat);
    this.heartbeat = null;
  }
}
