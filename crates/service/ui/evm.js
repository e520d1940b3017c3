// Ethereum (any EVM chain the service indexes) in the workbench: a 0x address or a 0x
// transaction hash is asked of the same /v1 routes as Bitcoin's (the service tells the chain
// from the 0x form), and the answers are drawn here: balances per asset, movements, and the
// screening with amounts per asset. Amounts are base-unit decimal strings (256-bit values):
// they are formatted with BigInt, never through floating point.

import { api } from './api.js';
import { el, table, link, pct, short } from './util.js';

export const EVM_ADDRESS = /^0x[0-9a-fA-F]{40}$/;
export const EVM_HASH = /^0x[0-9a-fA-F]{64}$/;

// "1234500000000000000" with 18 decimals → "1.2345" (exact; trailing zeros dropped).
export function units(amount, decimals) {
  if (amount === null || amount === undefined) return '?';
  const neg = String(amount).startsWith('-');
  const digits = String(amount).replace(/^-/, '');
  if (!/^\d+$/.test(digits)) return String(amount);
  if (decimals === null || decimals === undefined) return `${neg ? '-' : ''}${BigInt(digits).toString()} (base units)`;
  const v = BigInt(digits);
  const base = 10n ** BigInt(decimals);
  const whole = v / base;
  let frac = (v % base).toString().padStart(Number(decimals), '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${whole}${frac ? '.' + frac : ''}`;
}

// The asset of a movement, balance or exposure row: the symbol when known, else the token
// contract, else the chain's native asset.
function assetName(x, symbols) {
  if (x.symbol) return x.symbol;
  if (x.asset) return x.asset;
  if (!x.token) return 'ETH';
  return (symbols && symbols.get(x.token.toLowerCase()) && symbols.get(x.token.toLowerCase()).symbol) || x.token;
}

function decimalsOf(x, symbols) {
  if (x.decimals !== null && x.decimals !== undefined) return x.decimals;
  if (!x.token) return 18;
  const s = symbols && symbols.get(x.token.toLowerCase());
  return s ? s.decimals : null;
}

function amount(x, symbols, field = 'amount') {
  return `${units(x[field], decimalsOf(x, symbols))} ${assetName(x, symbols)}`;
}

const addrLink = (a) => (a ? link(`#/search?q=${encodeURIComponent(a)}`, short(a, 8)) : '–');
const txLink = (h) => (h ? link(`#/search?q=${encodeURIComponent(h)}`, short(h, 8)) : '–');

export function movementsTable(ms, symbols) {
  return table(['block', 'tx', 'kind', 'from', 'to', 'amount'], ms.map((m) => [
    String(m.block), txLink(m.tx), m.kind, addrLink(m.from), addrLink(m.to), amount(m, symbols)]));
}

// Token symbols and decimals seen in movements, for balances that name only the contract.
function symbolsFrom(ms) {
  const s = new Map();
  for (const m of ms || []) if (m.token && m.symbol) s.set(m.token.toLowerCase(), { symbol: m.symbol, decimals: m.decimals });
  return s;
}

export async function evmAddressCard(q) {
  const [a, s] = await Promise.all([api(`/v1/addresses/${q}`), api(`/v1/screen/address/${q}`).catch((e) => e)]);
  const symbols = symbolsFrom(a.recent);
  if (!(s instanceof Error)) for (const r of [...(s.received || []), ...(s.sent || [])]) if (r.token && r.symbol) symbols.set(r.token.toLowerCase(), { symbol: r.symbol, decimals: r.decimals });
  return el('div', { class: 'card', id: 'evm-address' },
    el('h2', {}, `${a.chain} address`), el('div', { class: 'mono' }, a.address),
    table(['', ''], [['kind', a.kind], ['movements in / out', `${a.movements_in} / ${a.movements_out}`],
      ['first / last seen', `block ${a.first_seen_block ?? '–'} / ${a.last_seen_block ?? '–'}`], ['as of block', String(a.as_of_block ?? '–')]]),
    el('h2', {}, 'Balances per asset'),
    a.balances.length ? table(['asset', 'balance', 'received', 'sent', ''], a.balances.map((b) => [
      assetName(b, symbols), units(b.balance, decimalsOf(b, symbols)), units(b.received, decimalsOf(b, symbols)), units(b.sent, decimalsOf(b, symbols)),
      b.incomplete ? 'incomplete: history before the index' : ''])) : el('p', { class: 'muted' }, 'no balance'),
    el('h2', {}, `Movements (latest ${a.recent.length})`),
    a.recent.length ? movementsTable(a.recent, symbols) : el('p', { class: 'muted' }, 'none'),
    el('h2', {}, 'Screening'),
    s instanceof Error ? el('p', { class: 'muted' }, s.message) : evmScreening(s, symbols));
}

export async function evmTxCard(q) {
  const t = await api(`/v1/transactions/${q}`);
  return el('div', { class: 'card', id: 'evm-tx' },
    el('h2', {}, `${t.chain} transaction`), el('div', { class: 'mono' }, t.hash),
    table(['', ''], [['block', String(t.block)], ['status', t.status], ['movements', String(t.movements.length)]]),
    el('h2', {}, 'Movements'), movementsTable(t.movements, symbolsFrom(t.movements)));
}

// The EVM screening answer: risk, rules that fired (amount per asset), exposure.
export function evmScreening(s, symbols = new Map()) {
  return el('div', { class: 'evm-screening' },
    el('p', {}, el('span', { class: `risk risk-${s.risk}`, id: 'risk-level' }, s.risk),
      el('span', { class: 'muted' }, ` · ${s.chain}${s.provenance && s.provenance.index_tip_block !== undefined ? ` · tip block ${s.provenance.index_tip_block}` : ''}`)),
    s.fired_rules.length ? table(['rule', 'level', 'why', 'direction', 'amount', 'USD', 'share'], s.fired_rules.map((r) => [
      r.rule, r.level, r.description, r.direction || '', `${units(r.amount, decimalsOf({ ...r, token: assetToken(r, s) }, symbols))} ${r.asset}`, r.usd === null || r.usd === undefined ? (r.usd_note || 'no rate') : String(r.usd), pct(r.share)]))
      : el('p', { class: 'muted' }, 'no rule fired'),
    (s.rules_not_judged || []).length ? el('div', { class: 'note' }, 'Not judged: ' + s.rules_not_judged.map((r) => `${r.rule} (${r.asset}): ${r.reason}`).join('; ')) : null,
    el('h3', {}, 'Exposure'),
    s.exposure.length ? table(['category', 'level', 'type', 'direction', 'amount', 'share', 'min hops', 'parties', 'path'], s.exposure.map((x) => [
      x.category, x.level, x.type, x.direction, amount(x, symbols), pct(x.share), String(x.min_hops), x.entities.join(', ') + (x.delisted ? ' (delisted)' : ''),
      el('span', {}, (x.path || []).map((p, j) => [j ? ' → ' : '', txLink(p)]))]))
      : el('p', { class: 'muted' }, 'no exposure to any labelled party'),
    (s.received || []).length ? el('p', { class: 'muted' }, 'received: ' + s.received.map((r) => amount(r, symbols, 'total')).join(' · ')) : null);
}

// A fired rule names its asset by symbol or contract; find the token for its decimals.
function assetToken(r, s) {
  const x = s.exposure.find((e) => e.asset === r.asset);
  return x ? x.token : null;
}
