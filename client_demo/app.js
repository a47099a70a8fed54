// giftcast demo app: sign up, wallet, lobby, rooms (viewer and host). No build step.
import {
  $, h, avatar, fmtCompact, fmtGiftValue, fmtInt, fmtPrice, fmtTime, giftIcon, hashHue, loadJSON, newId, plural,
  reducedMotion, saveJSON, wsBase,
} from './common.js';
import { LiveSocket } from './live.js';
import {
  hideLimitNotice, loadLimits, refundControl, renderCoinsCost, resumeRefund, showLimitReached, wireMoney,
} from './money.js';
import { enterCashout, renderCashout, resumePayout, wireCashout } from './cashout.js';

const TOKEN_KEY = 'giftcast.token';
const PURCHASE_KEY = 'giftcast.purchase';
const PENDING_MAX_AGE_MS = 10 * 60 * 1000;
const STREAK_WINDOW_MS = 3000; // the contract's; the catalog's `streak_window_ms` is the server's

/** How long after a send the next one still extends its streak, as this server counts it. */
function streakWindowMs() {
  const ms = state.catalog?.streak_window_ms;
  return Number.isSafeInteger(ms) && ms >= 0 ? ms : STREAK_WINDOW_MS;
}
const QUIET_REPLAY_OVER = 12; // a catch-up longer than this is listed, not animated

const state = {
  token: null,
  me: null,
  catalog: null,
  catalogReady: null,
  gifts: new Map(),
  view: null,
  room: null, // the RoomSession on screen
};

// --- storage ---------------------------------------------------------------------------

function readToken() {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function setToken(token) {
  state.token = token;
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    /* private mode: signed in for this tab only */
  }
}

// --- HTTP ------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message, detail = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }

  /** No answer, or an answer that is not an outcome: the same request may be sent again. */
  get retriable() {
    return this.status === 0 || this.status >= 500 || this.code === 'rate_limited' || this.code === 'unavailable';
  }
}

async function api(method, path, { body, key, auth = true, quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth && state.token) headers.Authorization = `Bearer ${state.token}`;
  if (key) headers['Idempotency-Key'] = key;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'network', "Can't reach giftcast. Check your connection and try again.");
  }
  let doc = null;
  const text = await res.text().catch(() => '');
  if (text) {
    try {
      doc = JSON.parse(text);
    } catch {
      doc = null;
    }
  }
  if (res.ok) return doc ?? {};
  const err = (doc && doc.error) || {};
  const error = new ApiError(res.status, err.code || `http_${res.status}`, err.message || `${res.status} ${res.statusText}`, err);
  if (res.status === 401 && auth && !quiet401) {
    signedOut('You were signed out. Pick a name to start again.');
  }
  throw error;
}

const FRIENDLY = {
  insufficient_coins: 'Not enough coins. Top up to keep gifting.',
  rate_limited: 'Whoa, slow down! Sending the rest in a moment…',
  age_restricted: 'Buying coins, sending gifts and going live are for ages 18 and over.',
  self_gift: "You can't send gifts in your own live.",
  room_not_live: 'This live has ended.',
  spending_limit: "You've reached your daily spending limit.",
  unknown_gift: "That gift isn't available any more.",
  unknown_package: "That coin package isn't available any more.",
  name_taken: 'That name is taken. Try another one.',
  unavailable: 'giftcast is busy right now. Please try again in a moment.',
  network: "Can't reach giftcast. Check your connection and try again.",
  idempotency_conflict: 'That purchase was already made with different details. Please try again.',
  below_minimum: 'That is less than the smallest cash out.',
  insufficient_diamonds: "You don't have that many diamonds.",
  payout_limit: "That would pass today's cash-out maximum. Try again tomorrow.",
  coins_already_spent: "Some of those coins have been spent, so that purchase can't be refunded.",
  refund_window_closed: 'That purchase is too old to refund.',
  already_refunded: 'That purchase was already refunded.',
};

function friendly(code, message) {
  return FRIENDLY[code] || message || 'Something went wrong. Please try again.';
}

// --- small UI services ---------------------------------------------------------------

let toastTimer = null;

function toast(text, kind = 'info', ms = 4500) {
  const node = $('#toast');
  node.textContent = text;
  node.dataset.kind = kind;
  node.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  node.hidden = false;
  if (node.showPopover) {
    // The top layer: above an open dialog too (re-showing puts it back on top).
    try {
      if (node.matches(':popover-open')) node.hidePopover();
      node.showPopover();
    } catch {
      /* no popover support: a fixed element is fine */
    }
  }
  node.classList.remove('show');
  void node.offsetWidth; // restart the entrance animation
  node.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    node.classList.remove('show');
    toastTimer = setTimeout(() => {
      try {
        if (node.matches(':popover-open')) node.hidePopover();
      } catch {
        /* not a popover */
      }
      node.hidden = true;
    }, 250);
  }, ms);
}

function confirmDialog({ title, text, ok = 'OK', danger = true }) {
  const dialog = $('#confirm-dialog');
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  const okBtn = $('#confirm-ok');
  okBtn.textContent = ok;
  okBtn.className = `btn ${danger ? 'danger' : 'primary'}`;
  return new Promise((resolve) => {
    const done = (value) => {
      okBtn.removeEventListener('click', onOk);
      $('#confirm-cancel').removeEventListener('click', onCancel);
      dialog.removeEventListener('close', onClose);
      if (dialog.open) dialog.close();
      resolve(value);
    };
    const onOk = () => done(true);
    const onCancel = () => done(false);
    const onClose = () => done(false);
    okBtn.addEventListener('click', onOk);
    $('#confirm-cancel').addEventListener('click', onCancel);
    dialog.addEventListener('close', onClose);
    dialog.showModal();
    $('#confirm-cancel').focus();
  });
}

function bump(node) {
  if (!node) return;
  node.classList.remove('bump');
  void node.offsetWidth;
  node.classList.add('bump');
}

// --- me, balance -----------------------------------------------------------------------

function applyMe(me) {
  const coinsChanged = state.me && state.me.coins !== me.coins;
  state.me = { ...state.me, ...me };
  $('#me-name').textContent = me.name;
  $('#me-avatar').replaceChildren(avatar(me.name, 'sm'));
  $('#age-banner').hidden = me.adult !== false;
  renderBalance(coinsChanged);
  renderDiamonds();
  renderCoinsCost(state.me);
}

function setCoins(coins) {
  if (!state.me || !Number.isInteger(coins)) return;
  const changed = state.me.coins !== coins;
  state.me.coins = coins;
  renderBalance(changed);
}

function renderBalance(animate) {
  const coins = state.me?.coins ?? 0;
  for (const id of ['balance', 'room-balance', 'recharge-balance', 'wallet-balance']) {
    $(`#${id}`).textContent = fmtInt(coins);
  }
  if (animate) {
    bump($('#recharge-open'));
    bump($('#room-recharge'));
  }
}

function renderDiamonds() {
  const diamonds = state.me?.diamonds ?? 0;
  const cash = diamondsCash(diamonds);
  $('#wallet-diamonds').textContent = fmtInt(diamonds);
  $('#wallet-cash').textContent = cash;
  $('#host-diamonds-total').textContent = fmtInt(diamonds);
  $('#host-diamonds-cash').textContent = cash;
  renderCashout();
}

function diamondsCash(diamonds) {
  const rate = state.catalog?.cents_per_100_diamonds ?? 50;
  const currency = state.catalog?.packages?.[0]?.currency || 'USD';
  // integer cents, rounded down: what a payout of these diamonds would pay
  return fmtPrice(Math.floor((diamonds * rate) / 100), currency);
}

let meTimer = null;

function refreshMeSoon(ms = 1200) {
  clearTimeout(meTimer);
  meTimer = setTimeout(refreshMe, ms);
}

async function refreshMe() {
  if (!state.token) return;
  try {
    applyMe(await api('GET', '/api/me'));
  } catch {
    /* shown elsewhere; the next refresh will fix it */
  }
}

// --- catalog ---------------------------------------------------------------------------

function loadCatalog() {
  if (state.catalogReady) return state.catalogReady;
  state.catalogReady = (async () => {
    for (let attempt = 0; ; attempt += 1) {
      try {
        const catalog = await api('GET', '/api/catalog', { auth: false });
        state.catalog = catalog;
        state.gifts = new Map(catalog.gifts.map((g) => [g.id, g]));
        renderPackages();
        renderDiamonds();
        return catalog;
      } catch {
        if (attempt === 1) toast("Can't load the gift catalog. Retrying…", 'error');
        await new Promise((r) => setTimeout(r, Math.min(10000, 500 * 2 ** attempt)));
      }
    }
  })();
  return state.catalogReady;
}

function giftName(id) {
  return state.gifts.get(id)?.name || id || 'gift';
}

// --- boot and routing ------------------------------------------------------------------

async function boot() {
  wireStatic();
  loadCatalog();
  state.token = readToken();
  if (!state.token) {
    showSignup();
    return;
  }
  for (let attempt = 0; ; attempt += 1) {
    try {
      // Renew first (an extension of the contract): a fresh token keeps a returning user in.
      try {
        const renewed = await api('POST', '/api/me/token', { quiet401: true });
        if (renewed.token) setToken(renewed.token);
      } catch (e) {
        if (e.status === 401) throw e;
      }
      applyMe(await api('GET', '/api/me', { quiet401: true }));
      break;
    } catch (e) {
      if (e.status === 401) {
        signedOut('Your session has expired. Pick a name to start again.');
        return;
      }
      $('#boot').textContent = "Can't reach giftcast. Retrying…";
      await new Promise((r) => setTimeout(r, Math.min(15000, 1000 * 2 ** attempt)));
    }
  }
  startApp();
}

function startApp() {
  $('#boot').hidden = true;
  $('#topbar').hidden = false;
  route();
  resumePurchase();
  resumeRefund();
  resumePayout();
  // Keep the token fresh on a tab left open for days.
  clearInterval(startApp.renew);
  startApp.renew = setInterval(async () => {
    try {
      const renewed = await api('POST', '/api/me/token');
      if (renewed.token) setToken(renewed.token);
    } catch {
      /* try again next time */
    }
  }, 6 * 3600 * 1000);
}

function signedOut(notice) {
  if (state.room) {
    state.room.leave();
    state.room = null;
  }
  leaveLobby();
  setToken(null);
  state.me = null;
  clearInterval(startApp.renew);
  showSignup(notice);
}

function showView(name) {
  state.view = name;
  document.body.dataset.view = name;
  for (const view of ['signup', 'lobby', 'room', 'wallet']) {
    $(`#view-${view}`).hidden = view !== name;
  }
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function route() {
  if (!state.me) {
    showSignup();
    return;
  }
  const hash = location.hash || '#/';
  const roomMatch = hash.match(/^#\/room\/(\d{1,18})$/);
  const walletMatch = hash.match(/^#\/wallet(?:\/(limit|cashout))?$/);
  if (!roomMatch || Number(roomMatch[1]) !== state.room?.id) {
    if (state.room) {
      state.room.leave();
      state.room = null;
    }
  }
  if (!hash.startsWith('#/') || hash === '#/' || hash === '#') {
    enterLobby();
  } else if (roomMatch) {
    leaveLobby();
    if (!state.room) {
      showView('room');
      state.room = new RoomSession(Number(roomMatch[1]));
      state.room.start();
    }
  } else if (walletMatch) {
    leaveLobby();
    enterWallet(walletMatch[1] || null);
  } else {
    location.replace('#/');
  }
}

// --- sign up ---------------------------------------------------------------------------

function showSignup(notice) {
  $('#boot').hidden = true;
  $('#topbar').hidden = true;
  $('#age-banner').hidden = true;
  showView('signup');
  const noticeEl = $('#signup-notice');
  noticeEl.hidden = !notice;
  noticeEl.textContent = notice || '';
  $('#signup-birthdate').max = new Date().toISOString().slice(0, 10);
  setTimeout(() => $('#signup-name').focus(), 0);
}

async function onSignup(event) {
  event.preventDefault();
  const nameEl = $('#signup-name');
  const dateEl = $('#signup-birthdate');
  const errorEl = $('#signup-error');
  const name = nameEl.value.trim();
  const birthdate = dateEl.value;
  errorEl.textContent = '';
  nameEl.removeAttribute('aria-invalid');
  dateEl.removeAttribute('aria-invalid');
  if (!/^[A-Za-z0-9_.-]{1,32}$/.test(name)) {
    errorEl.textContent = name
      ? 'Use only letters, digits, dots, dashes and underscores (up to 32).'
      : 'Pick a display name.';
    nameEl.setAttribute('aria-invalid', 'true');
    nameEl.focus();
    return;
  }
  if (!/^\d{4}-\d{2}-\d{2}$/.test(birthdate) || birthdate > new Date().toISOString().slice(0, 10)) {
    errorEl.textContent = 'Enter your birth date.';
    dateEl.setAttribute('aria-invalid', 'true');
    dateEl.focus();
    return;
  }
  const submit = $('#signup-submit');
  submit.disabled = true;
  submit.textContent = 'Creating your account…';
  try {
    const user = await api('POST', '/api/users', { body: { name, birthdate }, auth: false });
    setToken(user.token);
    state.me = { id: user.id, name: user.name, coins: 0, diamonds: 0, adult: true };
    try {
      applyMe(await api('GET', '/api/me'));
    } catch {
      applyMe(state.me);
    }
    $('#signup-form').reset();
    startApp();
    toast(`Welcome, ${user.name}!`, 'success');
  } catch (e) {
    errorEl.textContent = friendly(e.code, e.message);
    if (e.code === 'name_taken') {
      nameEl.setAttribute('aria-invalid', 'true');
      nameEl.focus();
    }
  } finally {
    submit.disabled = false;
    submit.textContent = 'Create account';
  }
}

// --- lobby -----------------------------------------------------------------------------

let lobbyTimer = null;
const roomCards = new Map();

function enterLobby() {
  showView('lobby');
  document.title = 'giftcast · live now';
  loadRooms();
  clearInterval(lobbyTimer);
  lobbyTimer = setInterval(() => {
    if (document.visibilityState === 'visible') loadRooms();
  }, 5000);
}

function leaveLobby() {
  clearInterval(lobbyTimer);
  lobbyTimer = null;
}

async function loadRooms(manual = false) {
  const list = $('#room-list');
  try {
    const { items } = await api('GET', '/api/rooms');
    renderRooms(items || []);
  } catch (e) {
    if (manual || !list.children.length) toast(friendly(e.code, e.message), 'error');
  } finally {
    list.setAttribute('aria-busy', 'false');
  }
}

function renderRooms(items) {
  const list = $('#room-list');
  const seen = new Set();
  const order = [];
  let mine = null;
  for (const room of items) {
    seen.add(room.id);
    if (room.host?.id === state.me?.id) mine = room;
    let card = roomCards.get(room.id);
    if (!card) {
      card = buildRoomCard(room);
      roomCards.set(room.id, card);
    }
    card.querySelector('.room-card-title').textContent = room.title;
    card.querySelector('.room-card-viewers-n').textContent = fmtCompact(room.viewers ?? 0);
    card.querySelector('a').setAttribute(
      'aria-label',
      `${room.title}, hosted by ${room.host?.name}, ${plural(room.viewers ?? 0, 'viewer')}`,
    );
    order.push(card);
  }
  for (const [id, card] of roomCards) {
    if (!seen.has(id)) {
      card.remove();
      roomCards.delete(id);
    }
  }
  // The server's order (most viewers first); only move nodes when it changed, so a
  // keyboard user's focus on a card survives the refresh.
  const current = [...list.children];
  if (current.length !== order.length || order.some((card, i) => current[i] !== card)) {
    list.append(...order);
  }
  $('#rooms-empty').hidden = items.length > 0;
  const myLive = $('#my-live');
  myLive.hidden = !mine;
  $('#go-live-row').hidden = !!mine;
  if (mine) {
    const link = $('#my-live-link');
    link.href = `#/room/${mine.id}`;
    link.textContent = `return to “${mine.title}”`;
  }
}

function buildRoomCard(room) {
  const hue = hashHue(`${room.id}:${room.title}`);
  const isMine = room.host?.id === state.me?.id;
  return h('li', { class: 'room-card-item', testid: `room-${room.id}` },
    h('a', { class: 'room-card', href: `#/room/${room.id}`, testid: 'room-card' },
      h('div', {
        class: 'room-thumb',
        style: { background: `radial-gradient(circle at 30% 20%, hsl(${hue} 85% 55% / .9), transparent 60%), radial-gradient(circle at 80% 90%, hsl(${(hue + 90) % 360} 80% 45% / .9), transparent 55%), #17172a` },
      },
      h('span', { class: 'live-badge' }, 'LIVE'),
      h('span', { class: 'room-card-viewers', testid: `room-viewers-${room.id}` },
        eyeIcon(), h('span', { class: 'room-card-viewers-n' }, '0')),
      avatar(room.host?.name, 'xl'),
      isMine ? h('span', { class: 'mine-badge' }, 'You') : null),
      h('div', { class: 'room-card-meta' },
        h('strong', { class: 'room-card-title' }, room.title),
        h('span', { class: 'room-card-host muted' }, `@${room.host?.name ?? ''}`))));
}

function eyeIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '14');
  svg.setAttribute('height', '14');
  svg.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('fill', 'currentColor');
  path.setAttribute('d', 'M12 5c-5 0-9 4.5-10 7 1 2.5 5 7 10 7s9-4.5 10-7c-1-2.5-5-7-10-7zm0 11a4 4 0 110-8 4 4 0 010 8z');
  svg.append(path);
  return svg;
}

async function onGoLive(event) {
  event.preventDefault();
  const input = $('#go-live-title');
  const title = input.value.trim();
  if (!title) {
    toast('Give your live a title first.', 'error');
    input.focus();
    return;
  }
  const button = $('#go-live-submit');
  button.disabled = true;
  try {
    const room = await api('POST', '/api/rooms', { body: { title } });
    saveJSON(localStorage, `giftcast.overlay.${room.id}`, room.overlay_token);
    input.value = '';
    location.hash = `#/room/${room.id}`;
  } catch (e) {
    if (e.code === 'forbidden') {
      // Already live somewhere: take the host back there.
      try {
        const { items } = await api('GET', '/api/rooms');
        const mine = (items || []).find((r) => r.host?.id === state.me.id);
        if (mine) {
          toast('You are already live. Taking you back to your live.', 'info');
          location.hash = `#/room/${mine.id}`;
          return;
        }
      } catch {
        /* fall through */
      }
    }
    toast(friendly(e.code, e.message), 'error');
  } finally {
    button.disabled = false;
  }
}

// --- wallet ----------------------------------------------------------------------------

let txNext = null;
let txLoading = false;
let txAgain = false; // a fresh list was asked for while a page was loading

/** The wallet; `sub` (`limit`, `cashout`) brings that panel into view and focus. */
function enterWallet(sub = null) {
  showView('wallet');
  document.title = 'giftcast · wallet';
  refreshMe();
  loadTransactions(true);
  loadLimits();
  enterCashout(sub);
  if (sub) {
    const panel = $(`#${sub}-panel`);
    panel.scrollIntoView({ block: 'start' });
    panel.focus({ preventScroll: true });
  }
}

async function loadTransactions(reset) {
  if (txLoading) {
    if (reset) txAgain = true;
    return;
  }
  txLoading = true;
  const list = $('#wallet-list');
  const more = $('#wallet-more');
  more.disabled = true;
  if (reset) txNext = null;
  try {
    const query = txNext ? `?limit=20&before=${txNext}` : '?limit=20';
    const doc = await api('GET', `/api/wallet/transactions${query}`);
    await loadCatalog();
    const items = (doc.items || []).map(txItem);
    if (reset) list.replaceChildren(...items);
    else list.append(...items);
    txNext = doc.next ?? null;
    more.hidden = !txNext;
    $('#wallet-empty').hidden = list.children.length > 0;
  } catch (e) {
    toast(friendly(e.code, e.message), 'error');
  } finally {
    txLoading = false;
    more.disabled = false;
    list.setAttribute('aria-busy', 'false');
    if (txAgain) {
      txAgain = false;
      loadTransactions(true);
    }
  }
}

function txItem(t) {
  let title;
  let detail;
  let amount;
  let unit;
  const countText = t.count > 1 ? ` ×${t.count}` : '';
  switch (t.kind) {
    case 'recharge':
      title = 'Bought coins';
      detail = t.price_cents != null ? fmtPrice(t.price_cents, t.currency || 'USD') : '';
      break;
    case 'gift_sent':
      title = `Sent ${giftName(t.gift_id)}${countText}`;
      detail = [t.to?.name ? `to @${t.to.name}` : '', fmtGiftValue(t.value, t.to?.name ? `@${t.to.name}` : 'host')]
        .filter(Boolean).join(' · ');
      break;
    case 'gift_received':
      title = `Received ${giftName(t.gift_id)}${countText}`;
      detail = [t.from?.name ? `from @${t.from.name}` : '', fmtGiftValue(t.value, 'you')]
        .filter(Boolean).join(' · ');
      break;
    case 'payout':
      title = 'Cash out';
      break;
    case 'payout_reversed':
      title = 'Cash out returned';
      break;
    case 'refund':
      title = 'Refunded a purchase';
      detail = t.price_cents != null ? `${fmtPrice(t.price_cents, t.currency || 'USD')} back to you` : '';
      break;
    default:
      title = t.kind;
  }
  if (t.coins) {
    amount = t.coins;
    unit = 'coins';
  } else {
    amount = t.diamonds;
    unit = 'diamonds';
  }
  const sign = amount > 0 ? '+' : amount < 0 ? '−' : '';
  return h('li', { class: `tx tx-${t.kind}`, testid: 'wallet-item', dataset: { kind: t.kind, id: t.id } },
    h('span', { class: `tx-icon ${unit}`, 'aria-hidden': 'true' }),
    h('div', { class: 'tx-main' },
      h('strong', {}, title),
      h('span', { class: 'muted small' }, [detail, fmtTime(t.at)].filter(Boolean).join(' · ')),
      refundControl(t)),
    h('span', { class: `tx-amount ${amount > 0 ? 'plus' : 'minus'}` },
      `${sign}${fmtInt(Math.abs(amount))} `, h('span', { class: 'small muted' }, unit)));
}

// --- recharge --------------------------------------------------------------------------

function renderPackages() {
  const grid = $('#package-grid');
  if (!state.catalog) return;
  grid.replaceChildren(...state.catalog.packages.map((p) => h('button', {
    type: 'button',
    class: 'package',
    testid: `package-${p.id}`,
    dataset: { package: p.id },
    'aria-label': `Buy ${fmtInt(p.coins)} coins for ${fmtPrice(p.price_cents, p.currency)}`,
    onclick: () => buyPackage(p),
  },
  h('span', { class: 'package-coins' }, h('span', { class: 'coin', 'aria-hidden': 'true' }), fmtInt(p.coins)),
  h('span', { class: 'package-price' }, fmtPrice(p.price_cents, p.currency)))));
}

function openRecharge(reason = '') {
  const dialog = $('#recharge-dialog');
  const reasonEl = $('#recharge-reason');
  reasonEl.textContent = reason;
  reasonEl.hidden = !reason;
  renderBalance(false);
  const pending = loadJSON(localStorage, PURCHASE_KEY);
  if (!(pending && pending.user === state.me?.id)) {
    $('#recharge-status').textContent = '';
    $('#recharge-retry').hidden = true;
  }
  if (!dialog.open) {
    dialog.showModal();
    loadCatalog().then(() => dialog.querySelector('.package')?.focus());
  }
}

function setPurchaseBusy(busy) {
  for (const button of document.querySelectorAll('#package-grid .package, #recharge-retry')) {
    button.disabled = busy;
  }
  $('#recharge-dialog').setAttribute('aria-busy', String(busy));
}

let purchaseInFlight = false;

async function buyPackage(pkg) {
  if (purchaseInFlight) return;
  const pending = loadJSON(localStorage, PURCHASE_KEY);
  if (pending && pending.user === state.me.id) {
    // An earlier purchase got no answer: settle it (same key: never a second charge) first.
    $('#recharge-status').textContent = 'Confirming your earlier purchase first…';
    await completePurchase(pending);
    return;
  }
  const purchase = { key: newId(), package_id: pkg.id, user: state.me.id, coins: pkg.coins };
  saveJSON(localStorage, PURCHASE_KEY, purchase); // kept until the server answers
  await completePurchase(purchase);
}

async function completePurchase(purchase, { quiet = false } = {}) {
  if (purchaseInFlight) return false;
  purchaseInFlight = true;
  const status = $('#recharge-status');
  const retry = $('#recharge-retry');
  setPurchaseBusy(true);
  retry.hidden = true;
  if (!quiet) status.textContent = 'Processing your purchase…';
  try {
    const answer = await api('POST', '/api/wallet/recharge', {
      body: { package_id: purchase.package_id },
      key: purchase.key,
    });
    saveJSON(localStorage, PURCHASE_KEY, null);
    setCoins(answer.coins);
    const added = answer.coins_added ?? purchase.coins;
    status.textContent = '';
    toast(`+${fmtInt(added)} coins added. Balance: ${fmtInt(answer.coins)}`, 'success');
    const dialog = $('#recharge-dialog');
    if (dialog.open) dialog.close();
    if (state.view === 'wallet') loadTransactions(true);
    refreshMeSoon(500);
    return true;
  } catch (e) {
    if (e.retriable) {
      status.textContent = `We couldn't confirm your purchase of ${fmtInt(purchase.coins)} coins. ${e.status === 0 ? 'Check your connection and ' : ''}try again. You won't be charged twice.`;
      retry.hidden = false;
      if (quiet) toast('A coin purchase is still waiting for confirmation. Open “Get coins” to retry.', 'info');
      const wait = e.code === 'rate_limited' ? e.detail?.retry_after_ms : null;
      if (Number.isInteger(wait)) setTimeout(() => completePurchase(purchase), wait);
    } else {
      saveJSON(localStorage, PURCHASE_KEY, null);
      status.textContent = friendly(e.code, e.message);
      if (quiet) toast(friendly(e.code, e.message), 'error');
    }
    return false;
  } finally {
    purchaseInFlight = false;
    setPurchaseBusy(false);
  }
}

function resumePurchase() {
  const pending = loadJSON(localStorage, PURCHASE_KEY);
  if (pending && pending.user === state.me?.id) completePurchase(pending, { quiet: true });
}

// --- room ------------------------------------------------------------------------------

class RoomSession {
  constructor(id) {
    this.id = id;
    this.meId = state.me.id;
    this.room = null;
    this.isHost = false;
    this.ended = false;
    this.left = false;
    this.socket = null;
    this.pending = new Map(); // request id -> {id, gift_id, count, coins, state, at, combo}
    this.pendingKey = `giftcast.pending.${this.meId}.${id}`;
    this.limitedUntil = 0;
    this.flushTimer = null;
    this.slowToastAt = 0;
    this.combo = null;
    this.comboHide = null;
    this.lanes = new Map();
    this.feedStreaks = new Map();
    this.takeovers = [];
    this.takeoverBusy = false;
    this.timers = new Set();
    this.sessionKey = `giftcast.room.${this.meId}.${id}`;
    const saved = loadJSON(sessionStorage, this.sessionKey);
    this.diamonds = Number.isInteger(saved?.diamonds) ? saved.diamonds : 0;
    this.since = Number.isInteger(saved?.lastSeq) ? saved.lastSeq : null;
  }

  later(fn, ms) {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.left) fn();
    }, ms);
    this.timers.add(timer);
    return timer;
  }

  async start() {
    resetRoomView();
    document.title = 'giftcast · live';
    const now = Date.now();
    for (const p of loadJSON(localStorage, this.pendingKey, []) || []) {
      if (p && p.id && now - (p.at || 0) < PENDING_MAX_AGE_MS) this.pending.set(p.id, { ...p, state: 'queued' });
    }
    this.savePending();
    let room = null;
    try {
      room = await api('GET', `/api/rooms/${this.id}`);
    } catch (e) {
      if (this.left) return;
      if (e.status === 404) {
        this.showEnded('There is no live with this link.');
        return;
      }
    }
    if (this.left) return;
    await loadCatalog();
    if (this.left) return;
    if (room) {
      this.applyRoom(room);
      this.setViewers(room.viewers ?? 0);
      this.setTop(room.top || []);
      if ('goal' in room) this.setGoal(room.goal);
      if (room.status && room.status !== 'live') {
        this.showEnded();
        return;
      }
    }
    this.setupPanels();
    this.panelsReady = room !== null;
    if (this.isHost && this.since === null) {
      // A host opening the live afresh replays its history once (listed, not animated)
      // to total the diamonds of this live.
      this.since = 0;
      this.diamonds = 0;
      this.bootstrapQuiet = true;
    }
    this.renderDiamonds();
    this.socket = new LiveSocket({
      url: (since) => `${wsBase()}/ws/rooms/${this.id}?token=${encodeURIComponent(state.token || '')}${since !== null ? `&since=${since}` : ''}`,
      since: this.since,
      onWelcome: (w, info) => this.onWelcome(w, info),
      onEvent: (ev, info) => this.onEvent(ev, info),
      onReply: (msg) => this.onReply(msg),
      onResync: () => this.onResync(),
      onSeq: (seq) => this.saveSession(seq),
      onStatus: (status, detail) => this.onStatus(status, detail),
      onEnd: (why, code, reason) => this.onEnd(why, code, reason),
    });
    this.socket.start();
  }

  leave() {
    this.left = true;
    this.socket?.stop();
    clearTimeout(this.flushTimer);
    clearTimeout(this.comboHide);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    resetRoomView();
  }

  // --- room state ---

  applyRoom(room) {
    this.room = { ...this.room, ...room };
    if (room.host?.id != null) this.isHost = room.host.id === this.meId;
    $('#room-title').textContent = room.title ?? '';
    $('#room-host').textContent = room.host?.name ? `@${room.host.name}` : '';
    $('#room-host-avatar').replaceChildren(avatar(room.host?.name, 'sm'));
    $('#stage-avatar').replaceChildren(avatar(room.host?.name, 'xxl'));
    const hue = hashHue(`${this.id}:${room.title}`);
    $('#stage').style.setProperty('--stage-hue', hue);
    if (room.title) document.title = `${room.title} · giftcast`;
  }

  setupPanels() {
    $('#host-panel').hidden = !this.isHost;
    $('#gift-panel').hidden = this.isHost;
    $('#view-room').classList.toggle('is-host', this.isHost);
    if (this.isHost) this.setupHost();
    else this.renderGiftGrid();
  }

  setViewers(count) {
    const node = $('#viewer-count');
    node.textContent = fmtCompact(count);
    node.dataset.count = String(count);
  }

  setTop(top) {
    const list = $('#top-list');
    list.replaceChildren(...(top || []).map((entry, i) => h('li', {
      class: `top-item${entry.user?.id === this.meId ? ' me' : ''}`,
      testid: 'top-item',
    },
    h('span', { class: 'rank' }, String(i + 1)),
    avatar(entry.user?.name, 'sm'),
    h('span', { class: 'top-name' }, entry.user?.name ?? '?'),
    h('span', { class: 'top-coins' }, h('span', { class: 'coin', 'aria-hidden': 'true' }), fmtCompact(entry.coins), h('span', { class: 'sr-only' }, ' coins')))));
    $('#top-empty').hidden = (top || []).length > 0;
  }

  setGoal(goal) {
    const bar = $('#goal-bar');
    if (!goal || !goal.coins) {
      bar.hidden = true;
      return;
    }
    const pct = Math.max(0, Math.min(100, Math.floor((goal.progress * 100) / goal.coins)));
    const reached = goal.progress >= goal.coins;
    const wasReached = bar.classList.contains('reached');
    bar.hidden = false;
    bar.classList.toggle('reached', reached);
    $('#goal-title').textContent = goal.title;
    $('#goal-numbers').textContent = `${reached ? 'Reached! ' : ''}${fmtInt(goal.progress)} / ${fmtInt(goal.coins)}`;
    $('#goal-fill').style.width = `${pct}%`;
    bar.setAttribute('aria-valuenow', String(pct));
    bar.setAttribute('aria-valuetext', `${goal.title}: ${fmtInt(goal.progress)} of ${fmtInt(goal.coins)} coins`);
    bar.dataset.progress = String(goal.progress);
    bar.dataset.coins = String(goal.coins);
    if (reached && !wasReached) bump(bar);
  }

  renderDiamonds() {
    $('#host-diamonds').textContent = fmtInt(this.diamonds);
  }

  saveSession(seq) {
    saveJSON(sessionStorage, this.sessionKey, { lastSeq: seq, diamonds: this.diamonds });
  }

  // --- socket callbacks ---

  onWelcome(welcome, info) {
    this.applyRoom(welcome.room || {});
    if (!this.panelsReady) {
      this.panelsReady = true;
      this.setupPanels();
    }
    this.setViewers(welcome.viewers ?? 0);
    this.setTop(welcome.top || []);
    if ('goal' in welcome) this.setGoal(welcome.goal);
    if (welcome.you) setCoins(welcome.you.coins);
    this.quietReplay = info.replaying > QUIET_REPLAY_OVER || this.bootstrapQuiet === true;
    this.bootstrapQuiet = false;
    // Everything not answered yet goes again, with the same ids: the server answers a
    // repeat with `duplicate: true`, so a flaky network never charges twice.
    for (const p of this.pending.values()) p.state = 'queued';
    this.flush();
  }

  async onResync() {
    try {
      const room = await api('GET', `/api/rooms/${this.id}`);
      if (this.left) return;
      this.applyRoom(room);
      this.setViewers(room.viewers ?? 0);
      this.setTop(room.top || []);
      if ('goal' in room) this.setGoal(room.goal);
      if (this.isHost) {
        const perCoin = state.catalog?.diamonds_per_coin ?? 1;
        const fromTop = (room.top || []).reduce((sum, t) => sum + (t.coins || 0), 0) * perCoin;
        this.diamonds = Math.max(this.diamonds, fromTop);
        this.renderDiamonds();
        refreshMeSoon(0);
      }
    } catch {
      /* the live view keeps going; the next event corrects it */
    }
  }

  onStatus(status) {
    const node = $('#connection-status');
    const text = {
      idle: '',
      connecting: 'Connecting…',
      open: 'Connected',
      reconnecting: 'Connection lost — reconnecting…',
      offline: "You're offline — reconnecting when the network is back…",
      ended: 'This live has ended',
      unauthorized: 'Signed out',
      forbidden: "You can't join this live",
    }[status] ?? status;
    node.dataset.state = status;
    node.textContent = text;
    renderPendingNote(this);
  }

  async onEnd(why, code, reason) {
    if (why === 'ended') {
      this.showEnded();
      return;
    }
    if (why === 'unauthorized') {
      // The token no longer works: check, and send the user back to sign-up if so.
      try {
        await api('GET', '/api/me');
        toast('Could not join the live. Try again.', 'error');
        this.later(() => this.socket.start(), 2000);
      } catch {
        /* api() already went to sign-up on 401 */
      }
      return;
    }
    toast(reason || "You can't join this live.", 'error');
  }

  onEvent(ev, info) {
    switch (ev.type) {
      case 'gift':
        this.onGift(ev, info);
        break;
      case 'streak_end':
        this.onStreakEnd(ev, info);
        break;
      case 'room_ended':
        this.ended = true;
        break;
      case 'viewers':
        this.setViewers(ev.count);
        break;
      case 'top':
        this.setTop(ev.top);
        break;
      case 'goal':
        this.setGoal(ev);
        break;
      default:
        break;
    }
  }

  onGift(ev, info) {
    const quiet = info.replayed && this.quietReplay;
    this.addFeed(ev);
    if (this.isHost) {
      this.diamonds += ev.diamonds || 0;
      this.renderDiamonds();
      if (!quiet) {
        bump($('#host-diamonds'));
        this.floatDiamonds(ev.diamonds);
      }
      refreshMeSoon(1500);
    }
    if (ev.sender?.id === this.meId && ev.streak) this.syncCombo(ev);
    if (!quiet) this.animate(ev);
  }

  onStreakEnd(ev, info) {
    const quiet = info.replayed && this.quietReplay;
    const lane = this.lanes.get(ev.streak?.id);
    if (lane) {
      lane.querySelector('.lane-count').textContent = `x${fmtInt(ev.streak.total)}`;
      lane.classList.add('done');
      this.lanes.delete(ev.streak.id);
      this.later(() => lane.remove(), quiet ? 0 : 1400);
    }
    const item = this.feedStreaks.get(ev.streak?.id);
    if (item) {
      item.classList.add('done');
      const times = ev.streak.total > 1 ? ` x${fmtInt(ev.streak.total)}` : ''; // as the server's shout-out
      item.querySelector('.feed-text').textContent = `${ev.sender?.name} sent ${ev.gift?.name}${times}`;
      this.feedStreaks.delete(ev.streak.id);
    }
    if (ev.sender?.id === this.meId) this.endCombo(ev);
  }

  // --- feed ---

  addFeed(ev) {
    const feed = $('#event-feed');
    const stick = feed.scrollHeight - feed.scrollTop - feed.clientHeight < 40;
    const streakId = ev.streak?.id;
    let item = streakId != null ? this.feedStreaks.get(streakId) : null;
    const text = ev.shoutout || `${ev.sender?.name} sent ${ev.gift?.name}${ev.count > 1 ? ` x${ev.count}` : ''}`;
    if (item) {
      item.querySelector('.feed-text').textContent = text;
      bump(item);
      feed.append(item); // the newest activity at the bottom
    } else {
      item = h('li', { class: `feed-item tier-${ev.gift?.animation || 'small'}`, testid: 'feed-item', dataset: { seq: ev.seq } },
        avatar(ev.sender?.name, 'xs'),
        h('span', { class: 'feed-text' }, text),
        giftIcon(ev.gift, 'feed-gift'),
        ev.first ? h('span', { class: 'first-badge' }, 'first gift') : null);
      if (streakId != null) this.feedStreaks.set(streakId, item);
      feed.append(item);
      while (feed.children.length > 60) {
        const old = feed.firstElementChild;
        for (const [key, node] of this.feedStreaks) if (node === old) this.feedStreaks.delete(key);
        old.remove();
      }
    }
    item.dataset.seq = String(ev.seq);
    if (stick) feed.scrollTop = feed.scrollHeight;
  }

  // --- animations ---

  animate(ev) {
    const tier = ev.gift?.animation || 'small';
    if (ev.streak) this.updateLane(ev);
    if (tier === 'small') this.floatSmall(ev);
    else if (tier === 'medium') this.popMedium(ev);
    else this.queueTakeover(ev);
  }

  floatSmall(ev) {
    const fx = $('#stage-fx');
    if (fx.querySelectorAll('.fx-small').length > 24) return;
    const node = h('div', {
      class: 'fx fx-small',
      testid: 'gift-animation',
      dataset: { tier: 'small', seq: ev.seq },
      style: { '--x': `${Math.round(Math.random() * 50)}px`, '--drift': `${Math.round(Math.random() * 60 - 30)}px` },
    }, giftIcon(ev.gift), h('span', { class: 'fx-label' }, ev.sender?.name || ''));
    fx.append(node);
    this.later(() => node.remove(), reducedMotion() ? 1200 : 2400);
  }

  popMedium(ev) {
    const fx = $('#stage-fx');
    const active = fx.querySelectorAll('.fx-medium').length;
    if (active >= 3) fx.querySelector('.fx-medium')?.remove();
    const node = h('div', {
      class: 'fx fx-medium',
      testid: 'gift-animation',
      dataset: { tier: 'medium', seq: ev.seq },
      style: { '--slot': String(active % 3) },
    },
    giftIcon(ev.gift, 'fx-icon'),
    h('div', { class: 'fx-text' },
      h('strong', {}, ev.sender?.name || ''),
      h('span', {}, ev.shoutout || `sent ${ev.gift?.name}`)));
    fx.append(node);
    this.later(() => node.remove(), reducedMotion() ? 1800 : 2800);
  }

  queueTakeover(ev) {
    this.takeovers.push(ev);
    if (this.takeovers.length > 8) this.takeovers.splice(0, this.takeovers.length - 8);
    if (!this.takeoverBusy) this.nextTakeover();
  }

  nextTakeover() {
    const layer = $('#fx-takeover');
    const ev = this.takeovers.shift();
    if (!ev || this.left) {
      this.takeoverBusy = false;
      return;
    }
    this.takeoverBusy = true;
    const tier = ev.gift?.animation === 'epic' ? 'epic' : 'large';
    const backlog = this.takeovers.length;
    let ms = tier === 'epic' ? 3800 : 2800;
    if (backlog > 2) ms = 1600;
    if (reducedMotion()) ms = Math.min(ms, 2000);
    const hue = hashHue(ev.gift?.id || '');
    const card = h('div', {
      class: `fx fx-takeover-card tier-${tier}`,
      testid: 'gift-animation',
      dataset: { tier, seq: ev.seq },
      style: { '--hue': String(hue), '--dur': `${ms}ms` },
    },
    h('div', { class: 'fx-rays' }),
    tier === 'epic' ? h('div', { class: 'fx-sparks' }, ...Array.from({ length: 18 }, (_, i) => h('i', { style: { '--i': String(i) } }))) : null,
    giftIcon(ev.gift, 'fx-hero'),
    h('div', { class: 'fx-caption' },
      h('div', { class: 'fx-who' }, avatar(ev.sender?.name, 'sm'), h('strong', {}, ev.sender?.name || '')),
      h('div', { class: 'fx-shoutout' }, ev.shoutout || `sent ${ev.gift?.name}`)));
    layer.replaceChildren(card);
    layer.classList.add('active');
    this.later(() => {
      card.classList.add('leaving');
      this.later(() => {
        card.remove();
        if (!this.takeovers.length) layer.classList.remove('active');
        this.nextTakeover();
      }, 250);
    }, ms);
  }

  updateLane(ev) {
    const lanes = $('#combo-lanes');
    let lane = this.lanes.get(ev.streak.id);
    if (!lane) {
      lane = h('div', { class: 'lane', testid: 'combo-lane', dataset: { streak: ev.streak.id } },
        avatar(ev.sender?.name, 'sm'),
        h('div', { class: 'lane-text' },
          h('strong', {}, ev.sender?.name || ''),
          h('span', {}, `sent ${ev.gift?.name}`)),
        giftIcon(ev.gift, 'lane-gift'),
        h('span', { class: 'lane-count' }, 'x1'));
      lanes.prepend(lane);
      this.lanes.set(ev.streak.id, lane);
      while (lanes.children.length > 3) {
        const old = lanes.lastElementChild;
        for (const [key, node] of this.lanes) if (node === old) this.lanes.delete(key);
        old.remove();
      }
    }
    const count = lane.querySelector('.lane-count');
    count.textContent = `x${fmtInt(ev.streak.total)}`;
    bump(count);
    clearTimeout(lane.expire);
    // The server ends a streak 3 s after its last send; if that event is lost, tidy up anyway.
    lane.expire = this.later(() => {
      for (const [key, node] of this.lanes) if (node === lane) this.lanes.delete(key);
      lane.remove();
    }, 7000);
  }

  floatDiamonds(diamonds) {
    if (!diamonds) return;
    const node = h('div', { class: 'fx fx-diamonds' }, h('span', { class: 'diamond', 'aria-hidden': 'true' }), `+${fmtInt(diamonds)}`);
    $('#stage-fx').append(node);
    this.later(() => node.remove(), 1800);
  }

  // --- gifting ---

  renderGiftGrid() {
    const grid = $('#gift-grid');
    const gifts = state.catalog?.gifts || [];
    grid.replaceChildren(...gifts.map((gift) => h('button', {
      type: 'button',
      class: `gift-btn tier-${gift.animation}`,
      testid: `gift-${gift.id}`,
      dataset: { gift: gift.id, coins: gift.coins },
      'aria-label': `Send ${gift.name}, ${plural(gift.coins, 'coin')}${gift.streakable ? ', tap again for a combo' : ''}`,
      onclick: (e) => {
        bump(e.currentTarget);
        this.sendGift(gift);
      },
    },
    giftIcon(gift),
    h('span', { class: 'gift-name' }, gift.name),
    h('span', { class: 'gift-price' }, h('span', { class: 'coin', 'aria-hidden': 'true' }), fmtCompact(gift.coins)))));
  }

  sendGift(gift) {
    if (this.ended) {
      toast('This live has ended.', 'info');
      return;
    }
    if (this.isHost) {
      toast(FRIENDLY.self_gift, 'info');
      return;
    }
    let committed = 0;
    for (const p of this.pending.values()) committed += p.coins;
    const available = (state.me?.coins ?? 0) - committed;
    if (available < gift.coins) {
      openRecharge(`${gift.name} costs ${plural(gift.coins, 'coin')} and you have ${fmtInt(Math.max(0, available))}. Top up to send it.`);
      return;
    }
    this.tapCombo(gift);
    const entry = {
      id: newId(),
      gift_id: gift.id,
      count: 1,
      coins: gift.coins,
      state: 'queued',
      at: Date.now(),
      combo: gift.streakable,
    };
    this.pending.set(entry.id, entry);
    this.savePending();
    this.flush();
  }

  flush() {
    clearTimeout(this.flushTimer);
    if (this.left || !this.socket) return;
    if (!this.socket.ready) {
      renderPendingNote(this);
      return; // the next welcome sends everything queued
    }
    const wait = this.limitedUntil - Date.now();
    if (wait > 0) {
      this.flushTimer = setTimeout(() => this.flush(), wait);
      renderPendingNote(this);
      return;
    }
    for (const p of this.pending.values()) {
      if (p.state !== 'queued') continue;
      if (!this.socket.send({ type: 'gift', id: p.id, gift_id: p.gift_id, count: p.count })) break;
      p.state = 'sent';
    }
    renderPendingNote(this);
  }

  savePending() {
    const list = [...this.pending.values()].map(({ id, gift_id, count, coins, at, combo }) => ({ id, gift_id, count, coins, at, combo }));
    saveJSON(localStorage, this.pendingKey, list.length ? list : null);
  }

  onReply(msg) {
    if (msg.type === 'gift_ok') {
      const sent = this.pending.get(msg.id);
      if (sent && msg.value) {
        const host = this.room?.host?.name ? `@${this.room.host.name}` : 'the host';
        const count = sent.count > 1 ? ` ×${sent.count}` : '';
        $('#gift-value').textContent = `${giftName(sent.gift_id)}${count}: ${fmtGiftValue(msg.value, host)}`;
      }
      hideLimitNotice();
      const had = this.pending.delete(msg.id);
      if (had) this.savePending();
      if (msg.duplicate) refreshMeSoon(300); // its `coins` is the first answer's, not today's
      else setCoins(msg.coins);
      if (!this.pending.size) refreshMeSoon(1500);
      renderPendingNote(this);
      return;
    }
    if (msg.type !== 'error') return;
    const entry = msg.id ? this.pending.get(msg.id) : null;
    if (!entry) {
      if (msg.code !== 'rate_limited') toast(friendly(msg.code, msg.message), 'error');
      return;
    }
    if (msg.code === 'rate_limited' || msg.code === 'unavailable') {
      // Not an outcome: keep the gift and send it again, same id, when allowed.
      entry.state = 'queued';
      const wait = Number.isInteger(msg.retry_after_ms) ? msg.retry_after_ms : 1000;
      this.limitedUntil = Math.max(this.limitedUntil, Date.now() + Math.max(50, wait));
      if (Date.now() - this.slowToastAt > 2500) {
        this.slowToastAt = Date.now();
        toast(msg.code === 'rate_limited' ? FRIENDLY.rate_limited : 'giftcast is busy — sending your gift again in a moment…', 'warn', 2500);
      }
      this.flush();
      return;
    }
    this.pending.delete(msg.id);
    this.savePending();
    renderPendingNote(this);
    if (entry.combo) this.comboRefused(entry);
    const gift = state.gifts.get(entry.gift_id);
    switch (msg.code) {
      case 'insufficient_coins':
        refreshMeSoon(0);
        openRecharge(`Not enough coins for ${gift?.name || 'that gift'}. Top up to keep gifting.`);
        break;
      case 'room_not_live':
        this.showEnded();
        break;
      case 'spending_limit':
        showLimitReached(gift, msg.message);
        break;
      default:
        toast(friendly(msg.code, msg.message), 'error');
    }
  }

  // --- my combo ("Rose x12") ---

  tapCombo(gift) {
    const now = performance.now();
    if (!gift.streakable) {
      if (this.combo) this.hideCombo();
      return;
    }
    const c = this.combo;
    if (c && !c.done && c.gift.id === gift.id && now - c.last < streakWindowMs()) c.count += 1;
    else this.combo = { gift, count: 1, streakId: null, done: false };
    this.combo.last = now;
    this.renderCombo();
  }

  syncCombo(ev) {
    const c = this.combo;
    if (!c || c.done || c.gift.id !== ev.gift?.id) return;
    if (c.streakId !== null && c.streakId !== ev.streak.id) return;
    c.streakId = ev.streak.id;
    if (ev.streak.total > c.count) {
      c.count = ev.streak.total;
      this.renderCombo(false);
    }
  }

  comboRefused(entry) {
    const c = this.combo;
    if (!c || c.done || c.gift.id !== entry.gift_id) return;
    c.count -= entry.count;
    if (c.count <= 0) this.hideCombo();
    else this.renderCombo(false);
  }

  endCombo(ev) {
    const c = this.combo;
    if (!c || c.gift.id !== ev.gift?.id) return;
    if (c.streakId !== null && c.streakId !== ev.streak.id) return;
    c.done = true;
    c.count = ev.streak.total;
    const node = $('#streak-counter');
    node.classList.add('done');
    $('#streak-text').textContent = `${c.gift.name} x${fmtInt(c.count)} · combo!`;
    node.dataset.count = String(c.count);
    clearTimeout(this.comboHide);
    this.comboHide = this.later(() => this.hideCombo(), 2500);
  }

  renderCombo(restartTimer = true) {
    const c = this.combo;
    const node = $('#streak-counter');
    node.hidden = false;
    node.classList.remove('done');
    $('#streak-icon').replaceChildren(giftIcon(c.gift));
    $('#streak-text').textContent = `${c.gift.name} x${fmtInt(c.count)}`;
    node.dataset.count = String(c.count);
    node.dataset.gift = c.gift.id;
    bump($('#streak-text'));
    if (restartTimer) {
      const fill = $('#streak-timer-fill');
      fill.classList.remove('run');
      void fill.offsetWidth;
      fill.classList.add('run');
    }
    clearTimeout(this.comboHide);
    this.comboHide = this.later(() => this.hideCombo(), streakWindowMs() + 2500);
  }

  hideCombo() {
    clearTimeout(this.comboHide);
    this.combo = null;
    const node = $('#streak-counter');
    node.hidden = true;
    node.classList.remove('done');
  }

  // --- host ---

  setupHost() {
    const token = loadJSON(localStorage, `giftcast.overlay.${this.id}`);
    this.overlayToken = typeof token === 'string' ? token : null;
    this.renderOverlayUrl();
    this.renderDiamonds();
    refreshMe();
  }

  overlayUrl() {
    if (!this.overlayToken) return '';
    const params = new URLSearchParams({ room: String(this.id), token: this.overlayToken });
    const boxes = [...document.querySelectorAll('#overlay-widgets input[type=checkbox]')];
    const chosen = boxes.filter((b) => b.checked).map((b) => b.value);
    if (chosen.length !== boxes.length) params.set('widgets', chosen.join(',') || 'none');
    const min = Number($('#overlay-min-alert').value);
    if (Number.isInteger(min) && min > 0 && min !== 100) params.set('min_alert', String(min));
    return `${location.origin}/overlay?${params.toString().replace(/%2C/g, ',')}`;
  }

  renderOverlayUrl() {
    const url = this.overlayUrl();
    const input = $('#overlay-url');
    const open = $('#open-overlay');
    input.value = url;
    input.placeholder = url ? '' : 'Press “New overlay link” to make one';
    $('#copy-overlay-url').disabled = !url;
    if (url) {
      open.href = url;
      open.removeAttribute('aria-disabled');
    } else {
      open.removeAttribute('href');
      open.setAttribute('aria-disabled', 'true');
    }
  }

  async copyOverlayUrl() {
    const url = this.overlayUrl();
    if (!url) return;
    try {
      await navigator.clipboard.writeText(url);
    } catch {
      const input = $('#overlay-url');
      input.focus();
      input.select();
      try {
        document.execCommand('copy');
      } catch {
        toast('Select the URL and copy it by hand.', 'info');
        return;
      }
    }
    toast('Overlay URL copied. Paste it into an OBS browser source.', 'success');
  }

  async rotateOverlay() {
    const button = $('#rotate-overlay');
    button.disabled = true;
    try {
      const answer = await api('POST', `/api/rooms/${this.id}/overlay_token`);
      this.overlayToken = answer.overlay_token;
      saveJSON(localStorage, `giftcast.overlay.${this.id}`, answer.overlay_token);
      this.renderOverlayUrl();
      toast('New overlay link ready. The old link no longer works.', 'success');
    } catch (e) {
      toast(friendly(e.code, e.message), 'error');
    } finally {
      button.disabled = false;
    }
  }

  async submitGoal(event) {
    event.preventDefault();
    const titleEl = $('#goal-title-input');
    const coinsEl = $('#goal-coins-input');
    const title = titleEl.value.trim();
    const coins = Number(coinsEl.value);
    if (!title) {
      toast('Name your goal, e.g. “New microphone”.', 'error');
      titleEl.focus();
      return;
    }
    if (!Number.isInteger(coins) || coins < 1) {
      toast('The goal needs a whole number of coins, 1 or more.', 'error');
      coinsEl.focus();
      return;
    }
    const button = event.submitter || $('#goal-form button');
    button.disabled = true;
    try {
      const goal = await api('PUT', `/api/rooms/${this.id}/goal`, { body: { title, coins } });
      this.setGoal(goal);
      toast(`Goal set: ${goal.title} (${fmtInt(goal.coins)} coins)`, 'success');
    } catch (e) {
      toast(friendly(e.code, e.message), 'error');
    } finally {
      button.disabled = false;
    }
  }

  async endLive() {
    const ok = await confirmDialog({
      title: 'End your live?',
      text: 'Viewers will see that the live has ended, and no more gifts can be sent.',
      ok: 'End live',
    });
    if (!ok) return;
    const button = $('#end-live');
    button.disabled = true;
    try {
      await api('POST', `/api/rooms/${this.id}/end`);
      this.showEnded();
    } catch (e) {
      toast(friendly(e.code, e.message), 'error');
    } finally {
      button.disabled = false;
    }
  }

  // --- end ---

  showEnded(detail) {
    this.ended = true;
    this.socket?.stop();
    clearTimeout(this.flushTimer);
    this.pending.clear();
    this.savePending();
    saveJSON(sessionStorage, this.sessionKey, null);
    renderPendingNote(this);
    this.hideCombo();
    const box = $('#room-ended');
    box.hidden = false;
    $('#room-ended-detail').textContent = detail || (this.isHost
      ? `You received ${plural(this.diamonds, 'diamond')} in this live. Thanks for streaming!`
      : 'Thanks for watching. Find another live to keep the fun going.');
    const status = $('#connection-status');
    status.dataset.state = 'ended';
    status.textContent = 'This live has ended';
    for (const button of document.querySelectorAll('#gift-grid button, #host-panel button, #host-panel input')) {
      button.disabled = true;
    }
    refreshMeSoon(300);
    setTimeout(() => box.querySelector('a')?.focus(), 0);
  }
}

function renderPendingNote(session) {
  const note = $('#pending-gifts');
  if (!session || session.left) {
    note.textContent = '';
    return;
  }
  const n = session.pending.size;
  note.dataset.count = String(n);
  if (!n) {
    note.textContent = '';
  } else if (session.limitedUntil > Date.now()) {
    note.textContent = `Slow down — ${plural(n, 'gift')} waiting to send…`;
  } else if (!session.socket?.ready) {
    note.textContent = `${plural(n, 'gift')} will send when you're back online.`;
  } else {
    note.textContent = `Sending ${plural(n, 'gift')}…`;
  }
}

function resetRoomView() {
  $('#room-title').textContent = '…';
  $('#room-host').textContent = '';
  $('#room-host-avatar').replaceChildren();
  $('#stage-avatar').replaceChildren();
  $('#viewer-count').textContent = '0';
  $('#top-list').replaceChildren();
  $('#top-empty').hidden = false;
  $('#goal-bar').hidden = true;
  $('#goal-bar').classList.remove('reached');
  $('#combo-lanes').replaceChildren();
  $('#event-feed').replaceChildren();
  $('#stage-fx').replaceChildren();
  $('#fx-takeover').replaceChildren();
  $('#fx-takeover').classList.remove('active');
  $('#room-ended').hidden = true;
  $('#streak-counter').hidden = true;
  $('#gift-grid').replaceChildren();
  $('#pending-gifts').textContent = '';
  hideLimitNotice();
  $('#host-panel').hidden = true;
  $('#gift-panel').hidden = false;
  $('#view-room').classList.remove('is-host');
  $('#host-diamonds').textContent = '0';
  const status = $('#connection-status');
  status.dataset.state = 'connecting';
  status.textContent = 'Connecting…';
  for (const node of document.querySelectorAll('#host-panel button, #host-panel input')) node.disabled = false;
}

// --- wiring ----------------------------------------------------------------------------

function wireStatic() {
  const services = {
    api, toast, confirmDialog, friendly, refreshMe, setCoins, state, reloadTransactions: () => loadTransactions(true),
  };
  wireMoney(services);
  wireCashout(services);
  window.addEventListener('hashchange', route);
  $('#signup-form').addEventListener('submit', onSignup);
  $('#go-live-form').addEventListener('submit', onGoLive);
  $('#rooms-refresh').addEventListener('click', () => loadRooms(true));
  $('#recharge-open').addEventListener('click', () => openRecharge());
  $('#room-recharge').addEventListener('click', () => openRecharge());
  $('#wallet-recharge').addEventListener('click', () => openRecharge());
  $('#recharge-close').addEventListener('click', () => $('#recharge-dialog').close());
  $('#recharge-retry').addEventListener('click', () => {
    const pending = loadJSON(localStorage, PURCHASE_KEY);
    if (pending && pending.user === state.me?.id) completePurchase(pending);
    else $('#recharge-retry').hidden = true;
  });
  $('#recharge-dialog').addEventListener('click', (e) => {
    if (e.target === e.currentTarget) e.currentTarget.close(); // a click on the backdrop
  });
  $('#wallet-more').addEventListener('click', () => loadTransactions(false));
  $('#wallet-refresh').addEventListener('click', () => {
    refreshMe();
    loadTransactions(true);
  });
  $('#sign-out').addEventListener('click', async () => {
    const ok = await confirmDialog({
      title: 'Sign out?',
      text: 'giftcast has no passwords: this browser holds your only key to this account. After signing out you start a new account.',
      ok: 'Sign out',
    });
    if (ok) signedOut('Signed out. Pick a name to start a new account.');
  });
  $('#goal-form').addEventListener('submit', (e) => state.room?.submitGoal(e));
  $('#copy-overlay-url').addEventListener('click', () => state.room?.copyOverlayUrl());
  $('#rotate-overlay').addEventListener('click', () => state.room?.rotateOverlay());
  $('#end-live').addEventListener('click', () => state.room?.endLive());
  $('#overlay-widgets').addEventListener('change', () => state.room?.renderOverlayUrl());
  $('#overlay-min-alert').addEventListener('input', () => state.room?.renderOverlayUrl());
  $('#overlay-url').addEventListener('focus', (e) => e.target.select());
  $('#open-overlay').addEventListener('click', (e) => {
    if (e.currentTarget.getAttribute('aria-disabled') === 'true') e.preventDefault();
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && state.me) refreshMeSoon(200);
  });
}

boot();
