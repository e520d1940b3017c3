// An investigation as a file: the graph, positions, annotations, model, parameters and the
// index tip it was made on. Loading it draws the same picture; "Replay" re-runs the trace
// with the saved parameters and checks every saved tainted amount against the new answer.
// Also the picture for a report: PNG, SVG, and a standalone HTML case report.

import { api, errorBox } from './api.js';
import { el, btc, download, table, pct, short } from './util.js';
import { G, getCy, redraw, elements, BIG } from './graph.js';
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

// The trace request of a loaded trace's model and parameters.
function traceQuery(t) {
  const p = t.parameters || {};
  const qs = new URLSearchParams({ model: t.model, max_rows: '200000' });
  if (p.coinjoin_policy) qs.set('coinjoin', p.coinjoin_policy);
  if (p.fee_policy) qs.set('fee_policy', p.fee_policy);
  if (p.max_hops !== null && p.max_hops !== undefined) qs.set('max_hops', p.max_hops);
  if (p.dust_sats !== undefined) qs.set('dust_sats', p.dust_sats);
  if (p.min_fraction !== undefined) qs.set('min_fraction', p.min_fraction);
  return qs;
}

// Re-run the saved trace on the serving index and compare, output by output.
export async function replay() {
  const t = G.trace;
  if (!t) return { ok: true, text: 'no case trace in this investigation: nothing to replay' };
  const ans = await api(`/v1/cases/${encodeURIComponent(t.case)}/trace?${traceQuery(t)}`);
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
// Without an open graph page (the case page's report) it is drawn from the graph's state.
export function svgText() {
  const cy = getCy();
  const els = cy ? null : elements();
  if (!cy && !els.length) throw new Error('nothing to draw: open the graph first');
  const nodes = cy
    ? cy.nodes().map((n) => ({ p: n.position(), d: n.data() }))
    : els.filter((e) => e.group === 'nodes').map((e) => ({ p: e.position, d: e.data }));
  const at = new Map(nodes.map((n) => [n.d.id, n.p]));
  const edges = cy
    ? cy.edges().map((e) => ({ s: e.source().position(), t: e.target().position(), d: e.data() }))
    : els.filter((e) => e.group === 'edges').map((e) => ({ s: at.get(e.data.source), t: at.get(e.data.target), d: e.data }));
  let x1 = Infinity, y1 = Infinity, x2 = -Infinity, y2 = -Infinity;
  for (const { p } of nodes) { x1 = Math.min(x1, p.x); y1 = Math.min(y1, p.y); x2 = Math.max(x2, p.x); y2 = Math.max(y2, p.y); }
  const pad = 60;
  const bb = { x1: x1 - pad, y1: y1 - pad, w: x2 - x1 + 2 * pad, h: y2 - y1 + 2 * pad };
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${Math.ceil(bb.w)}" height="${Math.ceil(bb.h)}" viewBox="${bb.x1} ${bb.y1} ${bb.w} ${bb.h}" font-family="sans-serif">`,
    '<defs><marker id="arr" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>',
    `<rect x="${bb.x1}" y="${bb.y1}" width="${bb.w}" height="${bb.h}" fill="#fff"/>`];
  // Past BIG edges, as on screen, the amounts stay off the picture (unreadable at any page
  // size, and the bulk of a PDF's drawing time); the report's tables carry them.
  const big = edges.length > BIG;
  for (const { s, t, d } of edges) {
    if (!s || !t) continue;
    out.push(`<line x1="${s.x}" y1="${s.y}" x2="${t.x}" y2="${t.y}" stroke="${d.colour}" stroke-width="${d.w}"${big ? '' : ' marker-end="url(#arr)"'}/>`);
    if (d.label && !big) out.push(`<text x="${(s.x + t.x) / 2}" y="${(s.y + t.y) / 2 - 3}" font-size="7" text-anchor="middle" fill="#4a5568">${esc(d.label)}</text>`);
  }
  for (const { p, d } of nodes) {
    if (d.kind === 'tx') out.push(`<rect x="${p.x - 6}" y="${p.y - 6}" width="12" height="12" rx="2" fill="${d.colour}" stroke="#718096"/>`);
    else out.push(`<circle cx="${p.x}" cy="${p.y}" r="${d.kind === 'entity' ? 15 : 9}" fill="${d.colour}"/>`);
    if (!big || d.kind !== 'tx') out.push(`<text x="${p.x}" y="${p.y + 20}" font-size="9" text-anchor="middle">${esc(d.label)}</text>`);
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
    el('button', { id: 'export-svg', onclick: act(() => download(`graph-${stamp()}.svg`, new Blob([svgText()], { type: 'image/svg+xml' }))) }, 'SVG'),
    el('button', { id: 'export-pdf', title: 'the case report with this graph, through the print dialog ("Save as PDF")', onclick: act(() => printFromGraph()) }, 'PDF'));
}

// The case report: what investigators attach to a case file. The same document is saved
// as standalone HTML (no scripts) and printed to PDF through the browser's own print
// pipeline (the print stylesheet shows only the report): the numbers are the trace's, the
// picture is the graph as drawn (vector SVG, so it stays sharp in the PDF).
export function reportElement(name, model, ans) {
  const t = ans.trace;
  const tt = t.totals;
  const graph = G.trace && G.trace.case === name && G.nodes.size ? svgText() : null;
  const doc = el('article', { class: 'report' },
    el('h1', {}, `Case ${name}`),
    el('p', {}, `Model ${model} · index tip ${ans.index_tip_height} (${(t.provenance && t.provenance.index_tip_hash) || ''}) · snapshot ${ans.snapshot ?? ''} · generated ${new Date().toISOString()} by the cointrail workbench`),
    ans.definition && ans.definition.description ? el('p', {}, ans.definition.description) : null,
    el('h2', {}, 'Totals'),
    el('p', { class: 'totals' }, `stolen ${btc(tt.source_sats)} BTC → services ${btc(tt.stopped_sats)} · unspent ${btc(tt.unspent_sats)} · mixers ${btc(tt.mixer_sats)} · fees ${btc(tt.fee_sats)} · limits ${btc(tt.limit_sats)}`),
    table(['where', 'BTC'], [['stolen (case sources)', btc(tt.source_sats)], ['at services', btc(tt.stopped_sats)], ['unspent (dormant)', btc(tt.unspent_sats)], ['mixers', btc(tt.mixer_sats)], ['fees', btc(tt.fee_sats)], ['stopped by limits', btc(tt.limit_sats)]]),
    totalsChart(tt),
    ans.definition ? el('h2', {}, `Sources (${ans.definition.sources.length})`) : null,
    ans.definition ? el('ul', {}, ans.definition.sources.map((x) => el('li', { class: 'mono' }, x.txid ? (x.vout !== undefined ? `${x.txid}:${x.vout}` : x.txid) : x.address || JSON.stringify(x)))) : null,
    el('h2', {}, 'Destinations by entity'),
    table(['entity', 'category', 'tainted BTC', 'share', 'min hops', 'path'], t.destinations.map((d) => [d.name, d.category, btc(d.tainted_sats), pct(d.share), d.min_hops, d.path.join(' → ')])),
    el('h2', {}, 'Dormant loot'),
    table(['output', 'address', 'tainted BTC', 'height'], t.outputs.filter((r) => !r.spent && !r.stop_reason && r.tainted_sats > 0).map((r) => [`${r.txid}:${r.vout}`, r.address || '', btc(r.tainted_sats), r.height])),
    el('h2', {}, 'Peel chains'),
    table(['first tx', 'steps', 'peeled BTC'], t.peel_chains.map((p) => [p.first_txid, p.length, btc(p.peeled_sats)])),
    el('h2', {}, 'CoinJoins'),
    table(['tx', 'protocol', 'anonymity set', 'tainted in'], t.mixers.map((m) => [m.txid, m.protocol, m.anonymity_set, btc(m.tainted_in)])),
    el('h2', {}, 'Parameters'), el('pre', {}, JSON.stringify(t.parameters, null, 1)));
  if (graph) {
    const g = el('figure', { class: 'report-graph' });
    // Our own SVG text (labels escaped above), parsed as SVG: never as HTML.
    g.append(new DOMParser().parseFromString(graph, 'image/svg+xml').documentElement);
    doc.append(el('h2', {}, `Graph (${G.nodes.size} nodes, tainted amounts under ${model})`), g);
  }
  const notes = Object.entries(G.annotations).filter(([, a]) => a.note || a.name);
  if (notes.length) doc.append(el('h2', {}, 'Notes'), table(['node', 'name', 'note'], notes.map(([id, a]) => [short(id.slice(2), 12), a.name || '', a.note || ''])));
  return doc;
}

const REPORT_CSS = 'body{font:14px sans-serif;margin:2rem}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}.mono,td{word-break:break-all}svg{max-width:100%;height:auto}';

export async function caseReport(name, model, ans, view) {
  try {
    const doc = reportElement(name, model, ans);
    const html = `<!doctype html><meta charset="utf-8"><title>cointrail case ${name}</title><style>${REPORT_CSS}</style>${doc.outerHTML}`;
    download(`case-${name}-${model}.html`, new Blob([html], { type: 'text/html' }));
  } catch (e) {
    view.prepend(errorBox(e));
  }
}

// PDF: the report is put in the page where only the print stylesheet shows it, and the
// browser's print dialog saves it ("Save as PDF"); it is taken out again after printing.
export function printReport(name, model, ans) {
  document.getElementById('print-report')?.remove();
  const box = el('div', { id: 'print-report' }, reportElement(name, model, ans));
  document.body.append(box);
  document.body.classList.add('printing');
  document.title = `cointrail case ${name} (${model})`;
  const done = () => { box.remove(); document.body.classList.remove('printing'); document.title = 'cointrail workbench'; window.removeEventListener('afterprint', done); };
  window.addEventListener('afterprint', done);
  window.print();
  return box;
}

// The graph page's "PDF": the loaded case's report, from the trace answer of its saved
// parameters (the same request Replay makes), or the graph alone without a case.
export async function printFromGraph() {
  const t = G.trace;
  if (!t) throw new Error('load a case trace first (Cases → a case → Open the flow graph): the PDF is the case report with this graph');
  const ans = await api(`/v1/cases/${encodeURIComponent(t.case)}/trace?${traceQuery(t)}`);
  return printReport(t.case, t.model, ans);
}
