// Shared helpers for the demo app and the overlay: DOM building, formatting, gift icons, ids.
// Plain ES module, no dependencies. Nothing here ever uses innerHTML with server data.

/** Build an element: h('button', {class: 'btn', testid: 'x', onclick: fn}, 'text', child). */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'testid') node.dataset.testid = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'text') node.textContent = value;
    else if (key === 'style' && typeof value === 'object') Object.assign(node.style, value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

const intFormat = new Intl.NumberFormat();
const compactFormat = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });

export function fmtInt(n) {
  return intFormat.format(Number(n) || 0);
}

export function fmtCompact(n) {
  n = Number(n) || 0;
  return n < 10000 ? intFormat.format(n) : compactFormat.format(n);
}

/** Integer cents to a price string. Only for display: no arithmetic is done on the result. */
export function fmtPrice(cents, currency = 'USD') {
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency}`;
  }
}

/**
 * Integer millicents (1/1000 cent) to a price string with up to 4 decimals ("$0.0151"), so a
 * 1-coin gift's value is readable. Only for display.
 */
export function fmtMillicents(millicents, currency = 'USD') {
  const amount = millicents / 100000;
  try {
    return new Intl.NumberFormat(undefined, {
      style: 'currency', currency, minimumFractionDigits: 2, maximumFractionDigits: 4,
    }).format(amount);
  } catch {
    return `${amount.toFixed(4)} ${currency}`;
  }
}

/** A gift's `value` as one line: what it cost you, the host's share, the platform's. */
export function fmtGiftValue(value, host = 'host') {
  if (!value) return '';
  const c = value.currency || 'USD';
  return `cost ${fmtMillicents(value.paid_millicents, c)} · ${host} gets ${fmtMillicents(value.host_millicents, c)}`
    + ` · platform keeps ${fmtMillicents(value.platform_millicents, c)}`;
}

export function fmtTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay
    ? d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

export function plural(n, one, many = `${one}s`) {
  return `${fmtInt(n)} ${n === 1 ? one : many}`;
}

/** A request id / idempotency key. crypto.randomUUID needs a secure context; fall back. */
export function newId() {
  if (globalThis.crypto?.randomUUID) {
    try { return crypto.randomUUID(); } catch { /* insecure context */ }
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function hashHue(text) {
  let hash = 0;
  for (const ch of String(text)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 360;
}

/** A round avatar with the user's initial, coloured from their name. */
export function avatar(name, size = '') {
  const initial = (String(name || '?').match(/[A-Za-z0-9]/)?.[0] || '?').toUpperCase();
  const hue = hashHue(name || '?');
  return h('span', {
    class: `avatar ${size}`,
    'aria-hidden': 'true',
    style: { background: `linear-gradient(135deg, hsl(${hue} 80% 58%), hsl(${(hue + 40) % 360} 75% 45%))` },
  }, initial);
}

// --- gift icons ------------------------------------------------------------------------

const EMOJI = {
  rose: '🌹', tiktok: '🎵', finger_heart: '🫰', perfume: '🌸', doughnut: '🍩',
  hand_hearts: '🫶', confetti: '🎊', sunglasses: '😎', corgi: '🐕', money_gun: '💸',
  swan: '🦢', train: '🚂', galaxy: '🌌', fireworks: '🎆', whale_diving: '🐋',
  motorcycle: '🏍️', private_jet: '🛩️', sports_car: '🏎️', interstellar: '🪐',
  rosa_nebula: '🌠', tiktok_shuttle: '🚀', lion: '🦁', universe: '💫',
};
const TIER_EMOJI = { small: '🎁', medium: '💝', large: '🎉', epic: '👑' };

let emojiSupport = null;

/** Whether this machine draws colour emoji (OBS on a bare Linux box may not). */
export function emojiSupported() {
  if (emojiSupport !== null) return emojiSupport;
  emojiSupport = true;
  try {
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 20;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.textBaseline = 'top';
    ctx.font = '16px sans-serif';
    ctx.fillText('🌹', 0, 0);
    const data = ctx.getImageData(0, 0, 20, 20).data;
    emojiSupport = false;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] > 0 && (data[i] !== data[i + 1] || data[i + 1] !== data[i + 2])) {
        emojiSupport = true;
        break;
      }
    }
  } catch {
    emojiSupport = true;
  }
  return emojiSupport;
}

/** The icon of a gift: its emoji, or a coloured monogram when emoji cannot be drawn. */
export function giftIcon(gift, extraClass = '') {
  const tier = gift?.animation || 'small';
  const id = gift?.id || '';
  if (emojiSupported()) {
    return h('span', { class: `gift-icon ${extraClass}`, 'aria-hidden': 'true', dataset: { tier } },
      EMOJI[id] || TIER_EMOJI[tier] || '🎁');
  }
  const words = String(gift?.name || id || '?').split(/[\s_]+/).filter(Boolean);
  const letters = (words.length > 1 ? words[0][0] + words[1][0] : words[0]?.slice(0, 2) || '?').toUpperCase();
  const hue = hashHue(id);
  return h('span', {
    class: `gift-icon mono ${extraClass}`,
    'aria-hidden': 'true',
    dataset: { tier },
    style: { background: `radial-gradient(circle at 30% 30%, hsl(${hue} 90% 70%), hsl(${(hue + 50) % 360} 80% 42%))` },
  }, h('span', { class: 'mono-text' }, letters));
}

/** Read a JSON value from storage; never throws (private mode, quota, bad data). */
export function loadJSON(storage, key, fallback = null) {
  try {
    const raw = storage.getItem(key);
    return raw == null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

export function saveJSON(storage, key, value) {
  try {
    if (value == null) storage.removeItem(key);
    else storage.setItem(key, JSON.stringify(value));
  } catch {
    /* storage full or disabled: the app still works, it just forgets on reload */
  }
}

export function wsBase() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;
}

export const reducedMotion = () => window.matchMedia?.('(prefers-reduced-motion: reduce)').matches;
