// Cashing out diamonds (the wallet's "Cash out" panel): the balance and its cash value, a form
// that asks `POST /api/payouts` with a kept Idempotency-Key, and the list of payouts with their
// status (pending, paid, failed). Money arithmetic here is integers, as on the server.
import { $, h, fmtInt, fmtMillicents, fmtTime, newId, plural } from './common.js';
import { fmtCents, keptCall, sendKept } from './money.js';

const PAYOUT_KEY = 'giftcast.payout';
const STATUS_WORDS = { pending: 'Pending review', paid: 'Paid', failed: 'Failed · diamonds returned' };

let app = null;
let payoutCount = 0;
let wanted = false; // the user asked for this panel (#/wallet/cashout)
let typed = false; // the user changed the amount: do not overwrite it
let inFlight = false;

export function wireCashout(services) {
  app = services;
  $('#cashout-form').addEventListener('submit', onSubmit);
  $('#cashout-amount').addEventListener('input', () => {
    typed = true;
    renderPreview();
  });
}

function rates() {
  const catalog = app.state.catalog;
  return {
    rate: catalog?.cents_per_100_diamonds ?? 50,
    minimum: catalog?.payout_minimum_diamonds ?? 2000,
  };
}

/** The largest payout of at most `diamonds` worth whole cents (as the server computes it). */
export function payable(diamonds, rate) {
  const cents = Math.floor((diamonds * rate) / 100);
  if (!cents) return { diamonds: 0, cents: 0 };
  return { diamonds: Math.ceil((cents * 100) / rate), cents };
}

/** Show or refresh the panel from GET /api/me and the catalog. */
export function renderCashout() {
  const me = app.state.me;
  if (!me) return;
  const diamonds = me.diamonds ?? 0;
  const { rate, minimum } = rates();
  $('#wallet-cashout').hidden = diamonds <= 0;
  $('#cashout-panel').hidden = !(diamonds > 0 || payoutCount > 0 || wanted);
  $('#cashout-diamonds').textContent = fmtInt(diamonds);
  $('#cashout-value').textContent = Number.isInteger(me.diamonds_value_millicents)
    ? fmtMillicents(me.diamonds_value_millicents, me.currency || 'USD')
    : fmtCents(Math.floor((diamonds * rate) / 100));
  $('#cashout-rates').textContent = `100 diamonds are worth ${fmtCents(rate)}. The smallest cash out is `
    + `${fmtInt(minimum)} diamonds (${fmtCents(payable(minimum, rate).cents)}). Cash outs are reviewed before the money is sent.`;
  $('#cashout-minor').hidden = me.adult !== false;
  $('#cashout-submit').disabled = me.adult === false;
  if (!typed) {
    const all = payable(diamonds, rate).diamonds;
    $('#cashout-amount').value = all > 0 ? String(all) : '';
  }
  $('#cashout-amount').max = String(diamonds);
  $('#cashout-amount').min = String(minimum);
  renderPreview();
}

/** Why `amount` cannot be cashed out, or null. */
function problem(amount) {
  const have = app.state.me?.diamonds ?? 0;
  const { rate, minimum } = rates();
  if (!Number.isInteger(amount) || amount < 1) return 'Enter a whole number of diamonds.';
  if (amount < minimum) {
    return `The smallest cash out is ${fmtInt(minimum)} diamonds (${fmtCents(payable(minimum, rate).cents)}).`
      + (have < minimum ? ` You have ${fmtInt(have)}: keep going live!` : '');
  }
  if (amount > have) return `You have ${plural(have, 'diamond')}, so you can cash out at most that many.`;
  return null;
}

function renderPreview() {
  const raw = $('#cashout-amount').value.trim();
  const amount = raw === '' ? NaN : Number(raw);
  const preview = $('#cashout-preview');
  const submit = $('#cashout-submit');
  const why = raw === '' ? null : problem(amount);
  if (raw === '' || why) {
    preview.textContent = why || '';
    submit.textContent = 'Cash out';
    return;
  }
  const due = payable(amount, rates().rate);
  const rest = amount - due.diamonds;
  preview.textContent = `You get ${fmtCents(due.cents)} for ${plural(due.diamonds, 'diamond')}`
    + (rest ? `; the other ${plural(rest, 'diamond')} stay in your balance (worth less than a cent).` : '.');
  submit.textContent = `Cash out ${fmtCents(due.cents)}`;
}

/** Entering the wallet: a fresh form and the payout list; `sub` is the part after #/wallet/. */
export async function enterCashout(sub = null) {
  wanted = sub === 'cashout';
  typed = false;
  renderCashout();
  await loadPayouts();
}

async function loadPayouts() {
  try {
    const { items } = await app.api('GET', '/api/payouts');
    renderPayouts(items || []);
  } catch (e) {
    $('#cashout-error').textContent = `Can't load your cash outs. ${app.friendly(e.code, e.message)}`;
  }
}

function renderPayouts(items) {
  payoutCount = items.length;
  $('#payouts-empty').hidden = items.length > 0;
  $('#payout-list').replaceChildren(...items.map((p) => h('li', {
    class: `payout payout-${p.status}`, testid: 'payout-item', dataset: { id: p.id, status: p.status },
  },
  h('div', { class: 'payout-main' },
    h('strong', {}, fmtCents(p.cents)),
    h('span', { class: 'muted small' }, `${plural(p.diamonds, 'diamond')} · ${fmtTime(p.created_at)}`)),
  h('span', { class: `badge status-${p.status}`, testid: 'payout-status' }, STATUS_WORDS[p.status] || p.status))));
  renderCashout();
}

function errorWords(error, diamonds) {
  const { rate, minimum } = rates();
  switch (error.code) {
    case 'below_minimum':
      return `The smallest cash out is ${fmtInt(minimum)} diamonds (${fmtCents(payable(minimum, rate).cents)}).`;
    case 'insufficient_diamonds':
      return `You don't have ${plural(diamonds, 'diamond')} to cash out any more. Your balance has been updated: try a smaller amount.`;
    case 'age_restricted':
      return 'Cashing out is for ages 18 and over.';
    case 'payout_limit':
      return "That would pass today's cash-out maximum. Cash out less, or the rest tomorrow.";
    default:
      return app.friendly(error.code, error.message);
  }
}

async function onSubmit(event) {
  event.preventDefault();
  if (inFlight) return;
  const error = $('#cashout-error');
  error.textContent = '';
  const kept = keptCall(PAYOUT_KEY);
  if (kept) {
    error.textContent = 'Finishing your earlier cash out first…';
    await finish(kept);
    return;
  }
  const input = $('#cashout-amount');
  const amount = Number(input.value.trim());
  const why = input.value.trim() === '' ? 'Enter how many diamonds to cash out.' : problem(amount);
  if (why) {
    error.textContent = why;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    return;
  }
  input.removeAttribute('aria-invalid');
  const due = payable(amount, rates().rate);
  const ok = await app.confirmDialog({
    title: `Cash out ${fmtCents(due.cents)}?`,
    text: `${plural(due.diamonds, 'diamond')} leave your balance now. The money is sent once the cash out `
      + 'is reviewed; if it fails, the diamonds come back.',
    ok: 'Cash out',
    danger: false,
  });
  if (!ok) return;
  await finish({ key: newId(), diamonds: amount, user: app.state.me.id });
}

/** Send (or send again, with the same key) the cash out in `record`. */
async function finish(record) {
  inFlight = true;
  const submit = $('#cashout-submit');
  const error = $('#cashout-error');
  submit.disabled = true;
  const { answer, error: failure } = await sendKept(PAYOUT_KEY, record, '/api/payouts', { diamonds: record.diamonds });
  inFlight = false;
  submit.disabled = app.state.me?.adult === false;
  if (answer) {
    error.textContent = '';
    typed = false;
    app.toast(`Cash out requested: ${fmtCents(answer.cents)} for ${plural(answer.diamonds, 'diamond')}. It shows as pending until it's paid.`, 'success');
  } else if (failure.retriable) {
    error.textContent = `We couldn't confirm your cash out. ${failure.status === 0 ? 'Check your connection and try' : 'Try'} again: you won't be paid out twice.`;
    submit.textContent = 'Try again';
    if (app.state.view !== 'wallet') app.toast('A cash out is still waiting for confirmation. Open “Cash out” in your wallet to try again.', 'info');
    return;
  } else {
    error.textContent = errorWords(failure, record.diamonds);
    if (app.state.view !== 'wallet') app.toast(error.textContent, 'error');
  }
  await app.refreshMe();
  if (app.state.view === 'wallet') await loadPayouts();
}

/** A cash out left unanswered by a reload or a lost connection goes again, with its key. */
export function resumePayout() {
  const kept = keptCall(PAYOUT_KEY);
  if (kept) finish(kept);
}
