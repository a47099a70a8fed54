// giftcast overlay for an OBS browser source: /overlay?room=ID&token=OVERLAY_TOKEN
//
// URL parameters:
//   widgets=alerts,feed,top,goal   which widgets to show (default: all four)
//   min_alert=100                  a gift send worth at least this many coins plays a full alert
//   top_n=5                        how many top gifters to list (1-10)
//   feed_max=6                     how many feed lines at once
//   bg=checker                     a checkerboard behind the widgets, for previewing in a tab
//
// It remembers in localStorage (per room) how far it has shown, and resumes with `since`,
// so an OBS reload picks up where it left off: no gap and no repeat.
import { $, h, avatar, fmtCompact, fmtInt, giftIcon, loadJSON, saveJSON, wsBase } from './common.js';
import { LiveSocket } from './live.js';

const params = new URLSearchParams(location.search);
const roomId = params.get('room') || '';
const token = params.get('token') || '';
const ALL_WIDGETS = ['alerts', 'feed', 'top', 'goal'];
const widgets = new Set(
  (params.get('widgets') ?? ALL_WIDGETS.join(','))
    .split(',').map((w) => w.trim().toLowerCase()).filter((w) => ALL_WIDGETS.includes(w)),
);
const intParam = (name, fallback, low, high) => {
  const raw = params.get(name);
  const n = raw !== null && /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  return Number.isSafeInteger(n) && n >= low && n <= high ? n : fallback;
};
const minAlert = intParam('min_alert', 100, 0, 1e12);
const topN = intParam('top_n', 5, 1, 10);
const feedMax = intParam('feed_max', 6, 1, 20);
const STORE_KEY = `giftcast.overlay.seq.${roomId}`;
const ALERT_QUEUE_MAX = 12;

document.documentElement.classList.toggle('checker', params.get('bg') === 'checker');

// --- where we are: resume point and what was already shown above it --------------------

const saved = loadJSON(localStorage, STORE_KEY);
let since = Number.isInteger(saved?.since) ? saved.since : null;
const shownAbove = new Set(Array.isArray(saved?.shown) ? saved.shown.filter(Number.isInteger) : []);
const unshown = new Set(); // seqs waiting in the alert queue
let processed = since; // highest seq handled

function persist() {
  if (processed === null) return;
  const floor = unshown.size ? Math.min(...unshown) - 1 : processed;
  for (const seq of shownAbove) if (seq <= floor) shownAbove.delete(seq);
  since = floor;
  saveJSON(localStorage, STORE_KEY, { since: floor, shown: [...shownAbove] });
}

function markShown(seq) {
  if (!Number.isInteger(seq)) return;
  unshown.delete(seq);
  shownAbove.add(seq);
}

// --- alerts: one at a time --------------------------------------------------------------

const alertQueue = [];
let alertPlaying = false;

function enqueueAlert(ev) {
  alertQueue.push(ev);
  unshown.add(ev.seq);
  while (alertQueue.length > ALERT_QUEUE_MAX) {
    markShown(alertQueue.shift().seq); // a long catch-up: skip the oldest
  }
  if (!alertPlaying) playNextAlert();
}

function playNextAlert() {
  const box = $('#ov-alerts');
  const ev = alertQueue.shift();
  if (!ev) {
    alertPlaying = false;
    return;
  }
  alertPlaying = true;
  markShown(ev.seq);
  persist();
  const tier = ['medium', 'large', 'epic'].includes(ev.gift?.animation) ? ev.gift.animation : 'medium';
  let ms = { medium: 4000, large: 5500, epic: 7500 }[tier];
  if (alertQueue.length > 3) ms = Math.max(2500, Math.round(ms * 0.55));
  const count = ev.count > 1 ? ` x${fmtInt(ev.count)}` : '';
  const card = h('div', {
    class: `alert tier-${tier}`,
    testid: 'alert',
    dataset: { seq: ev.seq, tier, gift: ev.gift?.id },
    style: { '--dur': `${ms}ms` },
  },
  h('div', { class: 'alert-glow' }),
  tier === 'epic' ? h('div', { class: 'alert-sparks' }, ...Array.from({ length: 16 }, (_, i) => h('i', { style: { '--i': String(i) } }))) : null,
  giftIcon(ev.gift, 'alert-icon'),
  h('div', { class: 'alert-text' },
    h('div', { class: 'alert-sender', testid: 'alert-sender' }, ev.sender?.name || 'Someone'),
    h('div', { class: 'alert-gift' }, `sent ${ev.gift?.name || 'a gift'}${count}`),
    h('div', { class: 'alert-coins' }, h('span', { class: 'coin' }), `${fmtInt(ev.coins)} coins`)));
  box.replaceChildren(card);
  setTimeout(() => {
    card.classList.add('out');
    setTimeout(() => {
      card.remove();
      playNextAlert();
    }, 450);
  }, ms);
}

// --- feed: small gifts and streaks ---------------------------------------------------

const streakItems = new Map(); // streak id -> li

function trimFeed() {
  const feed = $('#ov-feed');
  while (feed.children.length > feedMax) {
    const old = feed.firstElementChild;
    for (const [id, node] of streakItems) if (node === old) streakItems.delete(id);
    old.remove();
  }
}

function expire(item, ms) {
  clearTimeout(item.expire);
  item.expire = setTimeout(() => {
    item.classList.add('out');
    setTimeout(() => {
      for (const [id, node] of streakItems) if (node === item) streakItems.delete(id);
      item.remove();
    }, 500);
  }, ms);
}

function feedLine(ev, extraClass = '') {
  return h('li', { class: `feed-item ${extraClass}`, testid: 'feed-item', dataset: { seq: ev.seq } },
    avatar(ev.sender?.name, 'sm'),
    h('span', { class: 'feed-text' },
      h('strong', {}, ev.sender?.name || ''),
      h('span', {}, ` sent ${ev.gift?.name || 'a gift'}`)),
    giftIcon(ev.gift, 'feed-gift'),
    h('span', { class: 'count' }, ev.count > 1 ? `x${fmtInt(ev.count)}` : ''));
}

function feedGift(ev) {
  const feed = $('#ov-feed');
  const item = feedLine(ev, `tier-${ev.gift?.animation || 'small'}`);
  feed.append(item);
  trimFeed();
  expire(item, 20000);
}

function feedStreak(ev) {
  const feed = $('#ov-feed');
  let item = streakItems.get(ev.streak.id);
  if (!item) {
    item = feedLine(ev, 'streak');
    item.dataset.testid = 'overlay-streak';
    item.dataset.streak = String(ev.streak.id);
    streakItems.set(ev.streak.id, item);
    feed.append(item);
    trimFeed();
  }
  const count = item.querySelector('.count');
  count.textContent = `x${fmtInt(ev.streak.total)}`;
  item.dataset.total = String(ev.streak.total);
  count.classList.remove('pop');
  void count.offsetWidth;
  count.classList.add('pop');
  expire(item, 12000); // its streak_end normally comes 3 s after the last send
}

function feedStreakEnd(ev) {
  const feed = $('#ov-feed');
  let item = streakItems.get(ev.streak.id);
  if (!item) {
    item = feedLine({ ...ev, count: 1 }, 'streak');
    item.dataset.testid = 'overlay-streak';
    item.dataset.streak = String(ev.streak.id);
    feed.append(item);
    trimFeed();
  }
  streakItems.delete(ev.streak.id);
  item.querySelector('.count').textContent = ev.streak.total > 1 ? `x${fmtInt(ev.streak.total)}` : '';
  item.dataset.total = String(ev.streak.total);
  item.classList.add('done'); // the flourish
  expire(item, 5000);
}

// --- top gifters and goal ----------------------------------------------------------------

function renderTop(top) {
  if (!widgets.has('top')) return;
  const list = $('#ov-top-list');
  const rows = (top || []).slice(0, topN);
  list.replaceChildren(...rows.map((entry, i) => h('li', { class: `rank-${i + 1}`, testid: 'overlay-top-item' },
    h('span', { class: 'rank' }, String(i + 1)),
    avatar(entry.user?.name, 'sm'),
    h('span', { class: 'name' }, entry.user?.name || '?'),
    h('span', { class: 'coins' }, h('span', { class: 'coin' }), fmtCompact(entry.coins)))));
  $('#ov-top').hidden = rows.length === 0;
}

function renderGoal(goal) {
  if (!widgets.has('goal')) return;
  const box = $('#ov-goal');
  if (!goal || !goal.coins) {
    box.hidden = true;
    return;
  }
  const pct = Math.max(0, Math.min(100, Math.floor((goal.progress * 100) / goal.coins)));
  const reached = goal.progress >= goal.coins;
  if (reached && !box.classList.contains('reached') && !box.hidden) {
    box.classList.remove('celebrate');
    void box.offsetWidth;
    box.classList.add('celebrate');
  }
  box.hidden = false;
  box.classList.toggle('reached', reached);
  $('#ov-goal-title').textContent = goal.title;
  $('#ov-goal-numbers').textContent = `${fmtInt(goal.progress)} / ${fmtInt(goal.coins)}`;
  $('#ov-goal-fill').style.width = `${pct}%`;
  box.dataset.progress = String(goal.progress);
}

// --- events --------------------------------------------------------------------------------

function onEvent(ev) {
  switch (ev.type) {
    case 'gift': {
      processed = ev.seq;
      if (shownAbove.has(ev.seq)) break; // shown before this reload
      const big = !ev.streak && ev.coins >= minAlert;
      if (big && widgets.has('alerts')) {
        enqueueAlert(ev);
      } else {
        if (widgets.has('feed')) {
          if (ev.streak) feedStreak(ev);
          else feedGift(ev);
        }
        markShown(ev.seq);
      }
      break;
    }
    case 'streak_end':
      processed = ev.seq;
      if (!shownAbove.has(ev.seq) && widgets.has('feed')) feedStreakEnd(ev);
      markShown(ev.seq);
      break;
    case 'room_ended':
      processed = ev.seq;
      markShown(ev.seq);
      break;
    case 'top':
      renderTop(ev.top);
      break;
    case 'goal':
      renderGoal(ev);
      break;
    default:
      break;
  }
}

let statusTimer = null;

function showStatus(text, state, delayMs = 0, hideAfterMs = 0) {
  const node = $('#ov-status');
  clearTimeout(statusTimer);
  const show = () => {
    node.textContent = text;
    node.dataset.state = state;
    node.hidden = false;
    if (hideAfterMs) statusTimer = setTimeout(() => { node.hidden = true; }, hideAfterMs);
  };
  if (delayMs) statusTimer = setTimeout(show, delayMs);
  else show();
}

function hideStatus(state) {
  clearTimeout(statusTimer);
  const node = $('#ov-status');
  node.dataset.state = state;
  node.hidden = true;
}

function start() {
  for (const w of ALL_WIDGETS) document.body.classList.toggle(`no-${w}`, !widgets.has(w));
  $('#ov-feed').hidden = !widgets.has('feed');
  if (!/^\d{1,18}$/.test(roomId) || !token) {
    showStatus('This overlay needs its full URL: copy it from the host panel of your live (…/overlay?room=…&token=…).', 'setup');
    return;
  }
  const socket = new LiveSocket({
    url: (from) => `${wsBase()}/ws/overlay/${roomId}?token=${encodeURIComponent(token)}${from !== null ? `&since=${from}` : ''}`,
    since,
    onWelcome: (welcome) => {
      if (processed === null) processed = welcome.seq;
      renderTop(welcome.top);
      if ('goal' in welcome) renderGoal(welcome.goal);
      persist();
    },
    onEvent: (ev) => onEvent(ev),
    onSeq: () => persist(),
    onResync: async (welcome) => {
      // History no longer reaches back to where we were: start from now.
      processed = welcome?.seq ?? processed;
      shownAbove.clear();
      unshown.clear();
      persist();
      try {
        const res = await fetch(`/api/rooms/${roomId}`, { cache: 'no-store' });
        if (res.ok) {
          const room = await res.json();
          renderTop(room.top);
          if ('goal' in room) renderGoal(room.goal);
        }
      } catch {
        /* the next top/goal event brings it up to date */
      }
    },
    onStatus: (status) => {
      if (status === 'open') hideStatus(status);
      else if (status === 'reconnecting' || status === 'offline') showStatus('reconnecting…', status, 2000);
      else if (status === 'connecting') hideStatus(status);
    },
    onEnd: (why) => {
      if (why === 'unauthorized') {
        showStatus('This overlay link no longer works (it was replaced). Copy the new URL from the host panel.', 'unauthorized');
      } else if (why === 'ended') {
        saveJSON(localStorage, STORE_KEY, null);
        showStatus('This live has ended', 'ended', 0, 10000);
      } else {
        showStatus('This overlay cannot join the live.', why);
      }
    },
  });
  socket.start();
  window.giftcastOverlay = { socket, widgets, minAlert }; // for debugging in the OBS console
}

start();
