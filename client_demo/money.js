// Money features of the demo app's wallet: the daily spending limit, refunds of recent
// purchases, and what the coins held cost. Cashing out diamonds lives in cashout.js.
// app.js owns the HTTP client, toasts and dialogs and hands them over with wireMoney().
// Plain ES module; nothing here uses innerHTML with server data.
import { $, h, fmtInt, fmtMillicents, fmtPrice, loadJSON, newId, plural, saveJSON } from './common.js';

const REFUND_KEY = 'giftcast.refund';
const REFUND_WINDOW_MS = 48 * 3600 * 1000; // the contract's window, when an item does not say
const HOUR_MS = 3600 * 1000;

let app = null; // {api, toast, confirmDialog, friendly, refreshMe, setCoins, reloadTransactions, state}
let limitDoc = null;

/** Hand over app.js's services and wire the limit panel's controls. Called once at boot. */
export function wireMoney(services) {
  app = services;
  $('#limit-form').addEventListener('submit', onLimitSubmit);
  $('#limit-remove').addEventListener('click', () => saveLimit(null, $('#limit-zone').value));
  $('#limit-keep').addEventListener('click', () => {
    // Asking for what is in force now cancels the change that is waiting.
    if (limitDoc) saveLimit(limitDoc.daily_coins, limitDoc.time_zone, 'Change cancelled. Your limit stays as it is.');
  });
}

// --- idempotent calls ------------------------------------------------------------------

/** The call kept under `storageKey` for the signed-in user, if one is still unanswered. */
export function keptCall(storageKey) {
  const record = loadJSON(localStorage, storageKey);
  return record && record.user === app.state.me?.id && typeof record.key === 'string' ? record : null;
}

/**
 * POST a call that moves money with its Idempotency-Key, kept in localStorage under
 * `storageKey` until the server answers. An outcome (an answer or a refusal) forgets the key;
 * no answer (network, 5xx, 429) keeps it, and the next try, after a reload too, sends the same
 * key, so the server does it at most once. Resolves {answer} or {error}.
 */
export async function sendKept(storageKey, record, path, body) {
  saveJSON(localStorage, storageKey, record);
  try {
    const answer = await app.api('POST', path, { body, key: record.key });
    saveJSON(localStorage, storageKey, null);
    return { answer };
  } catch (error) {
    if (!error.retriable) saveJSON(localStorage, storageKey, null);
    return { error };
  }
}

// --- formatting --------------------------------------------------------------------------

function currency() {
  return app.state.me?.currency || app.state.catalog?.packages?.[0]?.currency || 'USD';
}

export function fmtCents(cents) {
  return fmtPrice(cents, currency());
}

/** "Tue, Nov 25, 4:30 PM" in the browser's time zone. */
export function fmtWhen(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleString(undefined, { weekday: 'short', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
}

/** How long until `iso`: "24 h", "5 h 20 min", "12 min", "a moment". */
export function fmtIn(iso) {
  const minutes = Math.round((Date.parse(iso) - Date.now()) / 60000);
  if (!(minutes > 0)) return 'a moment';
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  if (!hours) return `${rest} min`;
  return rest ? `${hours} h ${rest} min` : `${hours} h`;
}

function zoneName(zone) {
  return String(zone || 'UTC').replace(/_/g, ' ');
}

function perDay(coins) {
  return coins == null ? 'no limit' : `${plural(coins, 'coin')} a day`;
}

// --- what the coins held cost --------------------------------------------------------------

/** "Your 330 coins cost you $4.99" under the wallet's balance (from GET /api/me). */
export function renderCoinsCost(me) {
  const node = $('#wallet-coins-cost');
  const cost = me?.coins_cost_millicents;
  const show = Number.isInteger(me?.coins) && me.coins > 0 && Number.isInteger(cost);
  node.hidden = !show;
  if (show) node.textContent = `Your ${plural(me.coins, 'coin')} cost you ${fmtMillicents(cost, me.currency || currency())}`;
}

// --- daily spending limit ----------------------------------------------------------------

function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** The zone the form starts with: what the user last asked for, or the browser's own zone. */
function formZone(doc) {
  const wanted = doc.pending ? doc.pending.time_zone : doc.time_zone;
  const untouched = doc.daily_coins == null && !doc.pending && (wanted || 'UTC') === 'UTC';
  return untouched ? browserZone() : wanted || 'UTC';
}

function fillZones(selected) {
  const select = $('#limit-zone');
  if (!select.options.length) {
    let zones = [];
    try {
      zones = Intl.supportedValuesOf('timeZone');
    } catch {
      /* an older browser: the user's zone and UTC are still offered */
    }
    const all = [...new Set(['UTC', browserZone(), ...zones])];
    select.replaceChildren(...all.map((zone) => h('option', { value: zone }, zoneName(zone))));
  }
  if (selected && ![...select.options].some((o) => o.value === selected)) {
    select.append(h('option', { value: selected }, zoneName(selected)));
  }
  select.value = selected;
}

/** Load the limit panel (`GET /api/wallet/limits`). */
export async function loadLimits() {
  try {
    renderLimits(await app.api('GET', '/api/wallet/limits'));
  } catch (e) {
    $('#limit-error').textContent = `Can't load your daily limit. ${app.friendly(e.code, e.message)}`;
  }
}

function renderLimits(doc) {
  limitDoc = doc;
  const zone = doc.time_zone || 'UTC';
  const limited = doc.daily_coins != null;
  const panel = $('#limit-panel');
  panel.dataset.limit = limited ? String(doc.daily_coins) : '';
  $('#limit-current').textContent = limited ? perDay(doc.daily_coins) : 'No limit';
  $('#limit-spent').textContent = plural(doc.spent_today ?? 0, 'coin');
  $('#limit-left').textContent = limited ? plural(doc.left_today ?? 0, 'coin') : '—';
  $('#limit-resets').textContent = `Your day resets at midnight ${zoneName(zone)}, in ${fmtIn(doc.day_ends_at)}.`;

  const pending = doc.pending;
  $('#limit-pending').hidden = !pending;
  if (pending) {
    const changes = [];
    if (pending.daily_coins !== doc.daily_coins) {
      changes.push(pending.daily_coins == null ? 'your limit is removed' : `your limit goes up to ${perDay(pending.daily_coins)}`);
    }
    if ((pending.time_zone || 'UTC') !== zone) changes.push(`your day starts ending at midnight ${zoneName(pending.time_zone)}`);
    $('#limit-pending-text').textContent = `Waiting: on ${fmtWhen(pending.effective_at)} (in ${fmtIn(pending.effective_at)}), `
      + `${changes.join(' and ') || 'your settings change'}. Until then, ${limited ? perDay(doc.daily_coins) : 'no limit'} still applies.`;
  }
  $('#limit-remove').hidden = !limited || (pending != null && pending.daily_coins == null);
  const wanted = pending ? pending.daily_coins : doc.daily_coins;
  $('#limit-amount').value = wanted == null ? '' : String(wanted);
  fillZones(formZone(doc));
}

function onLimitSubmit(event) {
  event.preventDefault();
  const input = $('#limit-amount');
  const raw = input.value.trim();
  const coins = Number(raw);
  input.removeAttribute('aria-invalid');
  if (raw === '' || !Number.isInteger(coins) || coins < 0 || coins > 1e9) {
    $('#limit-error').textContent = raw === ''
      ? 'Enter how many coins you can spend a day (or press “Remove limit”).'
      : 'Enter a whole number of coins, from 0 to 1,000,000,000.';
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    return;
  }
  saveLimit(coins, $('#limit-zone').value);
}

function savedMessage(before, doc) {
  if (doc.pending) {
    const now = doc.daily_coins == null ? 'no limit' : perDay(doc.daily_coins);
    return `Saved. The change takes effect in ${fmtIn(doc.pending.effective_at)}; until then, ${now} still applies.`;
  }
  if (doc.daily_coins == null) return 'You have no daily limit.';
  const lowered = before?.daily_coins == null || doc.daily_coins < before.daily_coins;
  return `${lowered ? 'Done: from now on' : 'Saved:'} your limit is ${perDay(doc.daily_coins)}.`;
}

async function saveLimit(dailyCoins, timeZone, done = null) {
  const buttons = document.querySelectorAll('#limit-panel button');
  for (const b of buttons) b.disabled = true;
  $('#limit-error').textContent = '';
  const before = limitDoc;
  try {
    const doc = await app.api('PUT', '/api/wallet/limits', { body: { daily_coins: dailyCoins, time_zone: timeZone || null } });
    renderLimits(doc);
    app.toast(done || savedMessage(before, doc), 'success');
  } catch (e) {
    $('#limit-error').textContent = e.code === 'invalid'
      ? 'That limit or time zone was not accepted. Check it and try again.'
      : app.friendly(e.code, e.message);
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

/** A gift refused with `spending_limit`: say how much is left today and link to the panel. */
export async function showLimitReached(gift, serverMessage) {
  const box = $('#limit-notice');
  const text = $('#limit-notice-text');
  box.hidden = false;
  text.textContent = 'Daily limit reached.';
  try {
    const doc = await app.api('GET', '/api/wallet/limits');
    if (doc.daily_coins == null) {
      text.textContent = 'Your daily limit changed while that gift was on its way. Try sending it again.';
      return;
    }
    const left = doc.left_today ?? 0;
    const why = left > 0 && gift
      ? `${gift.name} costs ${plural(gift.coins, 'coin')} and only ${plural(left, 'coin')} ${left === 1 ? 'is' : 'are'} left of your ${fmtInt(doc.daily_coins)}-coin daily limit.`
      : `You've spent all ${plural(doc.daily_coins, 'coin')} of your daily limit.`;
    text.textContent = `Daily limit reached: ${why} It resets at midnight ${zoneName(doc.time_zone)}, in ${fmtIn(doc.day_ends_at)}.`;
  } catch {
    text.textContent = serverMessage ? `Daily limit reached: ${serverMessage}.` : 'Daily limit reached.';
  }
}

export function hideLimitNotice() {
  $('#limit-notice').hidden = true;
}

// --- refunds -------------------------------------------------------------------------------

function refundWindowEnd(t) {
  const until = Date.parse(t.refundable_until ?? '');
  return Number.isNaN(until) ? Date.parse(t.at) + REFUND_WINDOW_MS : until;
}

function refundError(error, t) {
  switch (error.code) {
    case 'coins_already_spent':
      return `Some of these ${fmtInt(t.coins)} coins have been spent, so this purchase can't be refunded. A refund takes back every coin it bought.`;
    case 'refund_window_closed': {
      const hours = Math.round((refundWindowEnd(t) - Date.parse(t.at)) / HOUR_MS) || 48;
      return `Purchases can be refunded for ${hours} hours after buying. This one is older.`;
    }
    case 'already_refunded':
      return 'This purchase was already refunded.';
    case 'not_found':
      return "This purchase can't be refunded.";
    default:
      return app.friendly(error.code, error.message);
  }
}

/**
 * The refund control of a wallet item: "Refunded" for a refunded recharge, a "Refund" button
 * for one still in its window, nothing for anything else.
 */
export function refundControl(t) {
  if (t.kind !== 'recharge') return null;
  if (t.refunded_by != null) return h('span', { class: 'tx-badge', testid: 'tx-refunded' }, 'Refunded');
  if (!(t.coins > 0) || !(refundWindowEnd(t) > Date.now())) return null;
  const status = h('span', { class: 'tx-status small', testid: 'tx-refund-status', role: 'status' });
  const button = h('button', {
    type: 'button',
    class: 'btn ghost small',
    testid: 'tx-refund',
    'aria-label': `Refund this purchase of ${plural(t.coins, 'coin')}`,
  }, 'Refund');
  button.addEventListener('click', () => askRefund(t, button, status));
  const kept = keptCall(REFUND_KEY);
  if (kept && kept.transaction_id === t.id) {
    button.textContent = 'Try again';
    status.textContent = "We couldn't confirm this refund yet. Try again: it won't be refunded twice.";
  }
  return h('div', { class: 'tx-actions' }, button, status);
}

async function askRefund(t, button, status) {
  const kept = keptCall(REFUND_KEY);
  if (kept && kept.transaction_id !== t.id) {
    status.textContent = 'Finishing your earlier refund first…';
    await finishRefund(kept, null);
    return;
  }
  if (!kept) {
    const price = t.price_cents != null ? fmtPrice(t.price_cents, t.currency || currency()) : 'the money';
    const ok = await app.confirmDialog({
      title: 'Refund this purchase?',
      text: `${plural(t.coins, 'coin')} leave your wallet and ${price} goes back to how you paid. `
        + 'Only purchases whose coins are all still in your wallet can be refunded.',
      ok: 'Refund',
    });
    if (!ok) return;
  }
  await finishRefund(kept || { key: newId(), transaction_id: t.id, user: app.state.me.id }, { t, button, status });
}

let refundInFlight = false;

/** Send (or send again, same key) the refund in `record`; `row` is its wallet item, if shown. */
async function finishRefund(record, row) {
  if (refundInFlight) return;
  refundInFlight = true;
  if (row) {
    row.button.disabled = true;
    row.status.textContent = 'Refunding…';
  }
  const { answer, error } = await sendKept(REFUND_KEY, record, '/api/wallet/refunds', { transaction_id: record.transaction_id });
  refundInFlight = false;
  if (answer) {
    app.setCoins(answer.coins);
    const price = row?.t.price_cents != null ? `${fmtPrice(row.t.price_cents, row.t.currency || currency())} is on its way back to you. ` : '';
    app.toast(`Purchase refunded. ${price}Balance: ${plural(answer.coins, 'coin')}.`, 'success');
    app.refreshMe();
    app.reloadTransactions();
    return;
  }
  const t = row?.t || { id: record.transaction_id, coins: 0, at: '' };
  const words = error.retriable
    ? `We couldn't confirm your refund. ${error.status === 0 ? 'Check your connection and try' : 'Try'} again: it won't be refunded twice.`
    : refundError(error, t);
  if (!row) {
    app.toast(words, error.retriable ? 'warn' : 'error');
    if (!error.retriable) app.reloadTransactions();
    return;
  }
  row.button.disabled = false;
  row.status.textContent = words;
  if (error.retriable) row.button.textContent = 'Try again';
  else if (error.code === 'refund_window_closed' || error.code === 'not_found') row.button.hidden = true;
  else if (error.code === 'already_refunded') app.reloadTransactions();
  if (error.code === 'coins_already_spent') app.refreshMe();
}

/** A refund left unanswered by a reload or a lost connection goes again, with its key. */
export function resumeRefund() {
  const kept = keptCall(REFUND_KEY);
  if (kept) finishRefund(kept, null);
}
