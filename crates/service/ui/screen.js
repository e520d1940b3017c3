// Screening: an address, a transaction or a deposit output → risk level, the rules that
// fired, the exposure breakdown, with links into the graph.

import { api, errorBox } from './api.js';
import { el, btc, pct, table, link, TXID, OUTPOINT } from './util.js';
import { EVM_ADDRESS, evmScreening } from './evm.js';

export function screenPath(s) {
  const m = s.match(OUTPOINT);
  if (m) return `/v1/screen/output/${m[1]}/${m[2]}`;
  if (TXID.test(s)) return `/v1/screen/transaction/${s}`;
  return `/v1/screen/address/${encodeURIComponent(s)}`;
}

export async function screenView(view, subject) {
  const out = el('div', { id: 'screen-result' });
  view.append(el('h1', {}, 'Screen'),
    el('form', { id: 'screen-form', class: 'controls', onsubmit: (ev) => { ev.preventDefault(); location.hash = '#/screen?s=' + encodeURIComponent(ev.target.elements.s.value.trim()); } },
      el('input', { name: 's', size: 80, value: subject, placeholder: 'address (Bitcoin or 0x…), txid, or txid:vout (a deposit before crediting it)' }),
      el('button', {}, 'Screen')),
    out);
  if (!subject) return null;
  try {
    const s = await api(screenPath(subject));
    if (Array.isArray(s.received)) {
      out.append(el('p', {}, el('span', { class: 'mono' }, subject), ' ', link(`#/search?q=${encodeURIComponent(subject)}`, 'balances and movements')), evmScreening(s));
      return null;
    }
    const graphTarget = subject.match(OUTPOINT) ? subject.match(OUTPOINT)[1] : subject;
    out.append(
      el('p', {}, el('span', { class: `risk risk-${s.risk}`, id: 'risk-level' }, s.risk), ' ',
        link(`#/graph?add=${encodeURIComponent(graphTarget)}`, 'show in the graph'),
        el('span', { class: 'muted' }, ` · index tip ${s.provenance.index_tip_height} · snapshot ${s.provenance.snapshot}`)),
      el('h2', {}, 'Rules that fired'),
      s.fired_rules.length ? table(['rule', 'level', 'why', 'BTC', 'share', 'rows'], s.fired_rules.map((r) => [r.rule, r.level, r.description, btc(r.sats), pct(r.share), r.rows.join(', ')]))
        : el('p', { class: 'muted' }, 'none'),
      el('h2', {}, 'Exposure'),
      s.exposure.length ? table(['#', 'category', 'level', 'type', 'direction', 'BTC', 'share', 'min hops', 'parties', 'path'], s.exposure.map((x, i) => [
        String(i), x.category, x.level, x.type, x.direction, btc(x.sats), pct(x.share), x.min_hops, x.entities.join(', ') + (x.delisted ? ' (delisted)' : ''),
        el('span', {}, x.path.map((p, j) => [j ? ' → ' : '', link(`#/graph?add=${p}`, p.slice(0, 8) + '…')]))]))
        : el('p', { class: 'muted' }, 'no exposure to any labelled party'),
      el('p', { class: 'muted' }, `received ${btc(s.received.total_sats ?? 0)} · sent ${btc(s.sent.total_sats ?? 0)} · max hops ${s.parameters.max_hops}`));
  } catch (e) {
    out.append(errorBox(e));
  }
  return null;
}
