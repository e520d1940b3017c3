// Cases: the list, and one case under a chosen model (sources, totals as a chart,
// destinations by entity, dormant loot, peel chains, CoinJoins, the case's alerts).

import { api, errorBox } from './api.js';
import { el, svg, btc, pct, short, table, link } from './util.js';
import { loadTrace, G } from './graph.js';

export const MODELS = ['fifo', 'lifo', 'tiho', 'tifo', 'haircut', 'poison'];
const COINJOIN = ['stop', 'haircut-through', 'fifo-through', 'poison-through'];

export async function caseList(view) {
  const r = await api('/v1/cases');
  view.append(el('h1', {}, 'Cases'));
  if (!r.cases.length) {
    view.append(el('p', {}, 'No case yet: register one with `cointrail case create NAME --from TXID:VOUT` (or POST /v1/cases).'));
    return null;
  }
  view.append(table(['case', 'description', 'sources', 'origin'], r.cases.map((c) => [
    link(`#/case/${encodeURIComponent(c.name)}`, c.name), c.description || '', String(c.sources.length), c.origin || ''])));
  return null;
}

// The totals as one stacked bar: where the stolen satoshis are now.
export function totalsChart(t) {
  const parts = [
    ['at services', t.stopped_sats, '#2b6cb0'], ['unspent (dormant)', t.unspent_sats, '#e53e3e'],
    ['mixers', t.mixer_sats, '#6b46c1'], ['fees', t.fee_sats, '#d69e2e'], ['stopped by limits', t.limit_sats, '#a0aec0'],
  ];
  const total = Math.max(1, parts.reduce((s, p) => s + p[1], 0));
  const W = 640;
  let x = 0;
  const bars = [];
  const legend = [];
  parts.forEach(([name, v, c], i) => {
    const w = (v / total) * W;
    if (w > 0) bars.push(svg('rect', { x, y: 0, width: Math.max(w, 1), height: 26, fill: c }, svg('title', {}, `${name}: ${btc(v)} BTC`)));
    x += w;
    // Two columns: three of these labels did not fit in a row.
    legend.push(svg('rect', { x: (i % 2) * 320, y: 36 + Math.floor(i / 2) * 18, width: 10, height: 10, fill: c }),
      svg('text', { x: (i % 2) * 320 + 14, y: 45 + Math.floor(i / 2) * 18 }, `${name} ${btc(v)} (${pct(v / total)})`));
  });
  return svg('svg', { class: 'chart', id: 'totals-chart', width: W, height: 94, viewBox: `0 0 ${W} 94`, role: 'img', 'aria-label': 'where the stolen value is' }, bars, legend);
}

export async function caseView(view, name, q) {
  const model = q.get('model') || 'fifo';
  const coinjoin = q.get('coinjoin') || 'stop';
  const maxHops = q.get('max_hops') || '';
  const go = (m, c, h) => { location.hash = `#/case/${encodeURIComponent(name)}?model=${m}&coinjoin=${c}${h ? `&max_hops=${h}` : ''}`; };
  view.append(el('h1', {}, `Case ${name}`),
    el('div', { class: 'controls' },
      el('label', {}, 'model ', el('select', { id: 'model', onchange: (ev) => go(ev.target.value, coinjoin, maxHops) }, MODELS.map((m) => el('option', { value: m, selected: m === model }, m)))),
      el('label', {}, 'CoinJoins ', el('select', { id: 'coinjoin', onchange: (ev) => go(model, ev.target.value, maxHops) }, COINJOIN.map((m) => el('option', { value: m, selected: m === coinjoin }, m)))),
      el('label', {}, 'max hops ', el('input', { id: 'max-hops', type: 'number', min: 0, value: maxHops, style: 'width:4em', onchange: (ev) => go(model, coinjoin, ev.target.value) })),
      el('span', { class: 'muted', id: 'case-status' }, 'tracing…')));
  const qs = new URLSearchParams({ model, coinjoin });
  if (maxHops) qs.set('max_hops', maxHops);
  const t0 = performance.now();
  const [ans, alerts] = await Promise.all([
    api(`/v1/cases/${encodeURIComponent(name)}/trace?${qs}`),
    api('/v1/alerts?all=true&limit=1000').catch((e) => e),
  ]);
  const t = ans.trace;
  view.querySelector('#case-status').textContent = `traced in ${(performance.now() - t0).toFixed(0)} ms · ${t.txs_visited} transactions visited · ${t.tainted_outputs} tainted outputs · index tip ${ans.index_tip_height} · snapshot ${ans.snapshot}`;
  loadTrace(ans, model);
  const tip = ans.index_tip_height || 0;
  const dormant = t.outputs.filter((r) => !r.spent && !r.stop_reason && r.tainted_sats > 0).sort((a, b) => b.tainted_sats - a.tainted_sats);
  const def = ans.definition;
  const caseAlerts = alerts instanceof Error ? null : alerts.alerts.filter((a) => JSON.stringify(a.details || {}).includes(`"${name}"`) || (a.summary || '').includes(name));
  // (DOM's append writes a null as the text "null": el() drops them.)
  view.append(...[
    def.description ? el('p', {}, def.description) : null,
    el('div', { class: 'controls' },
      el('a', { href: '#/graph', id: 'open-graph' }, el('button', {}, `Open the flow graph (${G.nodes.size} nodes)`)),
      el('button', { id: 'case-report', onclick: async () => { const { caseReport } = await import('./investigation.js'); caseReport(name, model, ans, view); } }, 'Download case report (HTML)'),
      el('button', { id: 'case-pdf', title: 'prints the case report (totals, destinations, dormant loot, the graph); choose "Save as PDF" in the print dialog', onclick: async () => { const { printReport } = await import('./investigation.js'); try { printReport(name, model, ans); } catch (e) { view.prepend(errorBox(e)); } } }, 'Case report as PDF (print)')),
    ans.missing.length ? el('div', { class: 'note' }, 'Sources not in the index: ' + ans.missing.join('; ')) : null,
    t.outputs_truncated ? el('div', { class: 'note' }, `Only the first ${t.outputs.length} tainted outputs are listed (totals are complete).`) : null,
    el('div', { class: 'card' }, el('h2', {}, 'Where the stolen value is'), totalsChart(t.totals),
      el('p', { id: 'totals-text' }, `stolen ${btc(t.totals.source_sats)} BTC → services ${btc(t.totals.stopped_sats)} · unspent ${btc(t.totals.unspent_sats)} · mixers ${btc(t.totals.mixer_sats)} · fees ${btc(t.totals.fee_sats)} · limits ${btc(t.totals.limit_sats)}`,
        t.conserving ? '' : ' (this model does not conserve value: poison marks whole outputs)')),
    el('div', { class: 'card' }, el('h2', {}, `Sources (${def.sources.length})`),
      el('ul', {}, def.sources.map((s) => {
        const txt = s.txid ? (s.vout !== undefined ? `${s.txid}:${s.vout}` : s.txid) : s.address || JSON.stringify(s);
        return el('li', { class: 'mono' }, txt, ' ', s.address ? link(`#/graph?add=${encodeURIComponent(s.address)}`, 'graph') : link(`#/screen?s=${encodeURIComponent(txt)}`, 'screen'));
      }))),
    el('div', { class: 'card' }, el('h2', {}, `Destinations by entity (${t.destinations.length})`),
      t.destinations.length ? table(['entity', 'category', 'tainted BTC', 'share', 'min hops', 'heights', 'outputs', 'proof path'],
        t.destinations.map((d) => [d.name + (d.entity !== null ? ` (#${d.entity})` : ''), d.category, btc(d.tainted_sats), pct(d.share), d.min_hops, `${d.first_height}–${d.last_height}`, d.outputs, el('span', { class: 'mono' }, d.path.map((p) => short(p, 4)).join(' → '))])) : el('p', { class: 'muted' }, 'none reached a known service')),
    el('div', { class: 'card' }, el('h2', {}, `Dormant loot (${dormant.length})`),
      dormant.length ? table(['output', 'address', 'tainted BTC', 'height', 'age'], dormant.slice(0, 200).map((r) => [
        el('span', { class: 'mono' }, `${short(r.txid)}:${r.vout}`), r.address ? link(`#/graph?add=${encodeURIComponent(r.address)}`, short(r.address, 10)) : '–', btc(r.tainted_sats), r.height,
        `${tip - r.height} blocks (~${((tip - r.height) / 144).toFixed(1)} days)`])) : el('p', { class: 'muted' }, 'no tainted output rests unspent')),
    el('div', { class: 'card' }, el('h2', {}, `Peel chains (${t.peel_chains.length})`),
      t.peel_chains.length ? table(['first tx', 'steps', 'peeled BTC', 'destinations'], t.peel_chains.map((p) => [el('span', { class: 'mono' }, short(p.first_txid)), p.length, btc(p.peeled_sats), p.steps.map((s) => s.destination).filter(Boolean).slice(0, 5).join(', ')])) : el('p', { class: 'muted' }, 'none')),
    el('div', { class: 'card' }, el('h2', {}, `CoinJoins met (${t.mixers.length})`),
      t.mixers.length ? table(['tx', 'protocol', 'anonymity set', 'tainted in'], t.mixers.map((m) => [el('span', { class: 'mono' }, short(m.txid)), m.protocol, m.anonymity_set, btc(m.tainted_in)])) : el('p', { class: 'muted' }, 'none')),
    el('div', { class: 'card' }, el('h2', {}, 'Alerts of this case'),
      alerts instanceof Error ? errorBox(alerts) : caseAlerts.length ? table(['height', 'rule', 'summary', 'acked'], caseAlerts.map((a) => [a.height, a.rule_id, a.summary, a.acked ? 'yes' : 'no'])) : el('p', { class: 'muted' }, 'none (add one with `cointrail alerts rules add traced-spend --case NAME`)')),
    t.warnings.length ? el('div', { class: 'note' }, t.warnings.join(' · ')) : null,
  ].filter(Boolean));
  return null;
}
