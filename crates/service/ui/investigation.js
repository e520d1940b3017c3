// An investigation as a file: the graph, positions, annotations, model, parameters and the
// index tip it was made on. Loading it draws the same picture; "Replay" re-runs the trace
// with the saved parameters and checks every saved tainted amount against the new answer.
// Also the picture for a report: PNG, SVG, and a standalone HTML case report.

import { api, errorBox } from './api.js';
import { el, btc, download, table, pct, short } from './util.js';
import { G, getCy, redraw, loadTrace } from './graph.js';
import { totalsChart } from './case.js';

export const FORMAT = 'cointrail-investigation';

export function serialize() {
  const cy = getCy();
  const positions = { ...G.positions };
  if (cy) for (const n of cy.nodes()) positions[n.id()] = { ...n.position() };
  return {
    format: FORMAT,
    version: 1,
    saved_at: new Date().toISOString(),
    trace: G.trace,
    nodes: [...G.nodes.values()],
    edges: [...G.edges.values()],
    taint: [...G.taint.entries()],
    collapsed: [...G.collapsed],
    annotations: G.annotations,
    positions,
    filters: G.filters,
    more: [...G.more.entries()],
  };
}

export function restore(doc) {
  if (!doc || doc.format !== FORMAT) throw new Error(`not a ${FORMAT} file (its "format" field is ${doc && JSON.stringify(doc.format)})`);
  if (doc.version !== 1) throw new Error(`investigation file version ${doc.version}; this workbench reads version 1`);
  G.nodes = new Map(doc.nodes.map((n) => [n.id, n]));
  G.edges = new Map(doc.edges.map((e) => [e.id, e]));
  G.taint = new Map(doc.taint || []);
  G.collapsed = new Set(doc.collapsed || []);
  G.annotations = doc.annotations || {};
  G.positions = doc.positions || {};
  G.filters = doc.filters || { minHeight: null, maxHeight: null, minSats: 0 };
  G.more = new Map(doc.more || []);
  G.trace = doc.trace || null;
  G.highlight = new Set();
}

// Re-run the saved trace on the serving index and compare, output by output.
export async function replay() {
  const t = G.trace;
  if (!t) return { ok: true, text: 'no case trace in this investigation: nothing to replay' };
  const p = t.parameters || {};
  const qs = new URLSearchParams({ model: t.model, max_rows: '200000' });
  if (p.coinjoin_policy) qs.set('coinjoin', p.coinjoin_policy);
  if (p.fee_policy) qs.set('fee_policy', p.fee_policy);
  if (p.max_hops !== null && p.max_hops !== undefined) qs.set('max_hops', p.max_hops);
  if (p.dust_sats !== undefined) qs.set('dust_sats', p.dust_sats);
  if (p.min_fraction !== undefined) qs.set('min_fraction', p.min_fraction);
  const ans = await api(`/v1/cases/${encodeURIComponent(t.case)}/trace?${qs}`);
  const now = new Map(ans.trace.outputs.map((r) => [`${r.txid}:${r.vout}`, r.tainted_sats]));
  const diffs = [];
  for (const [k, v] of G.taint) if ((now.get(k) || 0) !== v) diffs.push(`${k}: saved ${btc(v)}, now ${btc(now.get(k) || 0)}`);
  for (const k of ['source_sats', 'unspent_sats', 'fee_sats', 'stopped_sats', 'mixer_sats', 'limit_sats']) {
    if (t.totals && t.totals[k] !== ans.trace.totals[k]) diffs.push(`${k}: saved ${btc(t.totals[k])}, now ${btc(ans.trace.totals[k])}`);
  }
  const sameTip = ans.index_tip_height === t.index_tip_height;
  return {
    ok: diffs.length === 0,
    sameTip,
    text: diffs.length === 0
      ? `replayed ${G.taint.size} tainted outputs and the totals under ${t.model} on tip ${ans.index_tip_height}: the same numbers`
      : `${diffs.length} difference(s) on tip ${ans.index_tip_height} (saved on tip ${t.index_tip_height}${sameTip ? ': same tip, so labels, cases or attribution changed' : ''}): ${diffs.slice(0, 10).join('; ')}`,
  };
}

export async function pngBlob() {
  const cy = getCy();
  if (!cy) throw new Error('open the graph first');
  return cy.png({ output: 'blob-promise', full: true, scale: pngScale(), bg: '#ffffff' });
}

// Twice the screen's size for print, but at most 6000 px a side (a browser's canvas has
// an area limit; a large graph's picture would otherwise come out empty).
export function pngScale() {
  const bb = getCy().elements().boundingBox();
  return Math.min(2, 6000 / Math.max(1, bb.w), 6000 / Math.max(1, bb.h));
}

// SVG drawn from the node positions (cytoscape draws on canvas and has no SVG export).
export function svgText() {
  const cy = getCy();
  if (!cy) throw new Error('open the graph first');
  const bb = cy.elements().boundingBox();
  const pad = 40;
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${Math.ceil(bb.w + 2 * pad)}" height="${Math.ceil(bb.h + 2 * pad)}" viewBox="${bb.x1 - pad} ${bb.y1 - pad} ${bb.w + 2 * pad} ${bb.h + 2 * pad}" font-family="sans-serif">`,
    '<defs><marker id="arr" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>',
    `<rect x="${bb.x1 - pad}" y="${bb.y1 - pad}" width="${bb.w + 2 * pad}" height="${bb.h + 2 * pad}" fill="#fff"/>`];
  for (const e of cy.edges()) {
    const s = e.source().position();
    const t = e.target().position();
    out.push(`<line x1="${s.x}" y1="${s.y}" x2="${t.x}" y2="${t.y}" stroke="${e.data('colour')}" stroke-width="${e.data('w')}" marker-end="url(#arr)"/>`);
    if (e.data('label')) out.push(`<text x="${(s.x + t.x) / 2}" y="${(s.y + t.y) / 2 - 3}" font-size="7" text-anchor="middle" fill="#4a5568">${esc(e.data('label'))}</text>`);
  }
  for (const n of cy.nodes()) {
    const p = n.position();
    const c = n.data('colour');
    if (n.data('kind') === 'tx') out.push(`<rect x="${p.x - 6}" y="${p.y - 6}" width="12" height="12" rx="2" fill="${c}" stroke="#718096"/>`);
    else out.push(`<circle cx="${p.x}" cy="${p.y}" r="${n.data('kind') === 'entity' ? 15 : 9}" fill="${c}"/>`);
    out.push(`<text x="${p.x}" y="${p.y + 20}" font-size="9" text-anchor="middle">${esc(n.data('label'))}</text>`);
  }
  out.push('</svg>');
  return out.join('\n');
}

function stamp() {
  return new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
}

export function investigationControls(msg) {
  const file = el('input', { type: 'file', id: 'load-file', accept: '.json,application/json', hidden: true, onchange: async (ev) => {
    const f = ev.target.files[0];
    if (!f) return;
    try {
      restore(JSON.parse(await f.text()));
      redraw();
      const r = await replay();
      msg.replaceChildren(el('div', { class: r.ok ? 'ok' : 'note', id: 'replay-result' }, `loaded ${f.name}: ${r.text}`));
    } catch (e) {
      msg.replaceChildren(errorBox(e));
    }
    ev.target.value = '';
  } });
  const act = (f) => async () => { try { await f(); } catch (e) { msg.replaceChildren(errorBox(e)); } };
  return el('span', { class: 'controls' },
    el('button', { id: 'save-inv', onclick: act(() => download(`investigation-${stamp()}.json`, new Blob([JSON.stringify(serialize(), null, 1)], { type: 'application/json' }))) }, 'Save'),
    el('button', { id: 'load-inv', onclick: () => file.click() }, 'Load'), file,
    el('button', { id: 'replay', onclick: act(async () => { const r = await replay(); msg.replaceChildren(el('div', { class: r.ok ? 'ok' : 'note', id: 'replay-result' }, r.text)); }) }, 'Replay'),
    el('button', { id: 'export-png', onclick: act(async () => download(`graph-${stamp()}.png`, await pngBlob())) }, 'PNG'),
    el('button', { id: 'export-svg', onclick: act(() => download(`graph-${stamp()}.svg`, new Blob([svgText()], { type: 'image/svg+xml' }))) }, 'SVG'));
}

// A standalone HTML report of the case (no scripts), with the graph's picture when one is drawn.
export async function caseReport(name, model, ans, view) {
  try {
    const t = ans.trace;
    let img = '';
    if (getCy()) {
      const b = await pngBlob();
      img = await new Promise((res) => { const r = new FileReader(); r.onload = () => res(r.result); r.readAsDataURL(b); });
    }
    const doc = el('div', {},
      el('h1', {}, `Case ${name}`),
      el('p', {}, `Model ${model} · index tip ${ans.index_tip_height} (${t.provenance.index_tip_hash || ''}) · generated ${new Date().toISOString()} by the cointrail workbench`),
      el('h2', {}, 'Totals'), totalsChart(t.totals),
      el('h2', {}, 'Destinations by entity'),
      table(['entity', 'category', 'tainted BTC', 'share', 'min hops', 'path'], t.destinations.map((d) => [d.name, d.category, btc(d.tainted_sats), pct(d.share), d.min_hops, d.path.join(' → ')])),
      el('h2', {}, 'Dormant loot'),
      table(['output', 'address', 'tainted BTC', 'height'], t.outputs.filter((r) => !r.spent && !r.stop_reason && r.tainted_sats > 0).map((r) => [`${r.txid}:${r.vout}`, r.address || '', btc(r.tainted_sats), r.height])),
      el('h2', {}, 'Peel chains'),
      table(['first tx', 'steps', 'peeled BTC'], t.peel_chains.map((p) => [p.first_txid, p.length, btc(p.peeled_sats)])),
      el('h2', {}, 'CoinJoins'),
      table(['tx', 'protocol', 'anonymity set', 'tainted in'], t.mixers.map((m) => [m.txid, m.protocol, m.anonymity_set, btc(m.tainted_in)])),
      el('h2', {}, 'Parameters'), el('pre', {}, JSON.stringify(t.parameters, null, 1)));
    if (img) doc.append(el('h2', {}, 'Graph'), el('img', { src: img, style: 'max-width:100%' }));
    const notes = Object.entries(G.annotations).filter(([, a]) => a.note || a.name);
    if (notes.length) doc.append(el('h2', {}, 'Notes'), table(['node', 'name', 'note'], notes.map(([id, a]) => [short(id.slice(2), 12), a.name || '', a.note || ''])));
    const html = `<!doctype html><meta charset="utf-8"><title>cointrail case ${name}</title><style>body{font:14px sans-serif;margin:2rem}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}</style>${doc.innerHTML}`;
    download(`case-${name}-${model}.html`, new Blob([html], { type: 'text/html' }));
  } catch (e) {
    view.prepend(errorBox(e));
  }
}
