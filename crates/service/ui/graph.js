// The flow graph: transactions, addresses and entities as nodes; value flows as edges with
// the amount and, when a case's trace is loaded, the tainted amount under its model.
//
// The graph's state (G) lives outside the drawing: cytoscape is rebuilt from it on each
// change of filters or clusters, and G is what an investigation file saves. Columns are
// block heights, so the picture reads left to right in time.

import cytoscape from './vendor/cytoscape.esm.min.js';
import { api, errorBox } from './api.js';
import { el, btc, btcShort, short, pct, table } from './util.js';

export const PAGE = 25; // inputs/outputs added per expansion; a "more" node pages on
export const HUB_OUTPUTS = 200; // addresses with more outputs are hubs: not expanded unless asked
const SERVICE = new Set(['exchange', 'payment_processor', 'gambling', 'mining', 'otc', 'darknet', 'custodial_mixer']);

export const COLOURS = {
  source: '#dd6b20', thief: '#c53030', exchange: '#2b6cb0', mixer: '#6b46c1', sanctions: '#111111', otc: '#319795',
  payment_processor: '#4299e1', gambling: '#d69e2e', darknet: '#744210', unknown: '#a0aec0',
};
export const LEGEND = ['source', 'thief', 'exchange', 'mixer', 'sanctions', 'otc', 'unknown'];
export const legendName = (c) => (c === 'source' ? 'victim (case source)' : c);

export const G = newState();

function newState() {
  return {
    nodes: new Map(), // id -> node record
    edges: new Map(), // id -> {id, source, target, value, tainted, height, txid, vout}
    collapsed: new Set(), // entity ids drawn as one node
    annotations: {}, // node id -> {name, colour, note}
    positions: {}, // node id -> {x, y}, where the investigator dragged it
    taint: new Map(), // "txid:vout" -> tainted sats of the loaded trace
    trace: null, // the loaded case trace: case, model, parameters, totals, tip
    filters: { minHeight: null, maxHeight: null, minSats: 0 },
    more: new Map(), // "more" node id -> {of, dir, offset}
    highlight: new Set(),
  };
}

export function clearGraph() {
  const fresh = newState();
  for (const k of Object.keys(fresh)) G[k] = fresh[k];
}

export function categoryOf(cat) {
  if (!cat) return 'unknown';
  const c = String(cat).toLowerCase();
  if (c.includes('sanction')) return 'sanctions';
  if (c.includes('mixer') || c.includes('coinjoin')) return 'mixer';
  if (c.includes('exchange')) return 'exchange';
  if (c === 'thief' || c.includes('theft') || c.includes('stolen') || c.includes('hack')) return 'thief';
  return COLOURS[c] ? c : c;
}

function addNode(id, props) {
  let n = G.nodes.get(id);
  if (!n) {
    n = { id, labels: [], ...props };
    G.nodes.set(id, n);
  } else {
    for (const [k, v] of Object.entries(props)) if (v !== undefined && v !== null) n[k] = v;
  }
  return n;
}

export function addTx(txid, height) {
  return addNode('t:' + txid, { kind: 'tx', txid, height });
}

export function addAddr(address, props = {}) {
  return addNode('a:' + address, { kind: 'addr', address, ...props });
}

function addEdge(kind, txid, vout, source, target, value, height) {
  const id = `${kind}:${txid}:${vout}`;
  const tainted = G.taint.get(`${txid}:${vout}`) || 0;
  G.edges.set(id, { id, source, target, value, tainted, height, txid, vout });
}

// A case's trace (the answer of /v1/cases/{name}/trace) becomes the graph.
export function loadTrace(ans, model) {
  clearGraph();
  const t = ans.trace;
  G.trace = {
    case: ans.case, model, parameters: t.parameters, totals: t.totals,
    index_tip_height: ans.index_tip_height, index_tip_hash: t.provenance && t.provenance.index_tip_hash,
    snapshot: ans.snapshot, outputs_truncated: t.outputs_truncated,
  };
  for (const r of t.outputs) G.taint.set(`${r.txid}:${r.vout}`, r.tainted_sats);
  const k = caseKnowledge(ans);
  // Saved with the investigation, so nodes added after a reload are judged the same way.
  G.trace.thief_entities = k.thiefEntities;
  G.trace.victim_entities = k.victimEntities;
  for (const r of t.outputs) {
    const tx = addTx(r.txid, r.height);
    const addr = r.address || `${r.txid}:${r.vout}`;
    const a = addAddr(addr, { entity: r.entity });
    if (r.labels && r.labels.length) a.labels = [...new Set([...a.labels, ...r.labels])];
    if (!a.category) Object.assign(a, k.classify(r, addr));
    if (!r.spent && !r.stop_reason && r.tainted_sats > 0) a.dormant = true;
    addEdge('o', r.txid, r.vout, tx.id, a.id, r.value, r.height);
    if (r.spent_by) {
      const s = addTx(r.spent_by, r.spent_height);
      addEdge('s', r.txid, r.vout, a.id, s.id, r.value, r.spent_height);
    }
  }
  // The thief's other addresses (same cluster: common-input ownership) are the thief's too.
  for (const n of G.nodes.values()) if (n.kind === 'addr' && !n.category) Object.assign(n, thiefCluster(n.entity));
}

// Who is the thief, from what the case says, never from the shape of the graph. A source
// named as a transaction (`--from-tx`) is the theft: its outputs are the thief's. A stolen
// output or address named as a source is held by the victim (as screening takes it), and the
// transaction that first spends it is the theft: whoever it pays is the thief, unless it pays
// the victim back or a known service. Addresses in a thief address's cluster are the thief's;
// the victim's cluster is not. Every colour carries its reason (`why`), shown in the side panel.
export function caseKnowledge(ans) {
  const t = ans.trace;
  const theftTxs = new Set();
  for (const s of (ans.definition && ans.definition.sources) || []) if (s.kind === 'tx' && s.txid) theftTxs.add(s.txid);
  const victimAddrs = new Map();
  const victimEntities = new Set();
  for (const r of t.outputs) {
    if (r.hops !== 0 || theftTxs.has(r.txid)) continue;
    if (r.address) victimAddrs.set(r.address, `${r.txid}:${r.vout}`);
    if (r.entity !== null && r.entity !== undefined) victimEntities.add(r.entity);
    if (r.spent_by) theftTxs.add(r.spent_by);
  }
  const services = new Map();
  for (const d of t.destinations) if (d.entity !== null && d.entity !== undefined) services.set(d.entity, d);
  const thiefEntities = new Map();
  const classify = (r, addr) => {
    if (r.stop_reason && r.stop_reason.startsWith('service:')) {
      const d = services.get(r.entity);
      return { category: r.stop_reason.slice(8), why: `the trace stopped here: a known service${d ? ` (${d.name}, attributed)` : ''}` };
    }
    if (victimAddrs.has(addr)) return { category: 'source', why: `holds the case's stolen output ${victimAddrs.get(addr)} (a case source's holder is the victim, as screening takes it)` };
    if (r.entity !== null && r.entity !== undefined && victimEntities.has(r.entity)) return { category: 'source', why: `the victim's cluster (entity ${r.entity}) holds the case's stolen outputs` };
    if (theftTxs.has(r.txid)) {
      if (r.entity !== null && r.entity !== undefined && !thiefEntities.has(r.entity)) thiefEntities.set(r.entity, addr);
      return { category: 'thief', why: `paid by the theft transaction ${r.txid}, which ${r.hops === 0 ? 'the case names as its source' : "first spends the case's stolen outputs"}` };
    }
    if (r.entity !== null && r.entity !== undefined && services.has(r.entity)) {
      const d = services.get(r.entity);
      return { category: d.category, why: `cluster ${r.entity} is ${d.name} (${d.category}, attributed)` };
    }
    return {};
  };
  // Classify the theft's outputs first, so their clusters are known for every other row.
  for (const r of t.outputs) if (theftTxs.has(r.txid)) classify(r, r.address || `${r.txid}:${r.vout}`);
  const own = (e) => (e !== null && e !== undefined && thiefEntities.has(e) && !victimEntities.has(e)
    ? { category: 'thief', why: `same cluster as the thief: entity ${e} (common-input ownership) holds the thief's address ${thiefEntities.get(e)}` }
    : {});
  return {
    classify: (r, addr) => {
      const c = classify(r, addr);
      return c.category ? c : own(r.entity);
    },
    thiefEntities: [...thiefEntities].filter(([e]) => !victimEntities.has(e)),
    victimEntities: [...victimEntities],
  };
}

// An address outside the trace (expanded later) in a thief address's cluster.
export function thiefCluster(e) {
  const known = G.trace && G.trace.thief_entities;
  const hit = known && e !== null && e !== undefined && known.find(([x]) => x === e);
  return hit ? { category: 'thief', why: `same cluster as the thief: entity ${e} (common-input ownership) holds the thief's address ${hit[1]}` } : {};
}

// Why a node has its colour, for the side panel.
export function colourWhy(n) {
  if (G.annotations[n.id] && G.annotations[n.id].colour) return 'your annotation';
  if (n.why) return n.why;
  if (n.category) return `labelled ${n.category}${n.labelSource ? ` (${n.labelSource})` : ''}`;
  return G.trace ? `no label; not case ${G.trace.case}'s victim or thief, nor in their clusters` : 'no label, and no case trace loaded to say who is victim or thief';
}

function isHub(n) {
  return (n.outputs || 0) > HUB_OUTPUTS || SERVICE.has(categoryOf(n.category));
}

function setMore(of, dir, offset, total) {
  const id = `m:${of}:${dir}`;
  if (offset >= total) {
    G.nodes.delete(id);
    G.more.delete(id);
    return;
  }
  const parent = G.nodes.get(of);
  addNode(id, { kind: 'more', height: parent && parent.height, label: `${total - offset} more` });
  G.more.set(id, { of, dir, offset });
}

// Add a transaction's inputs ('in') or outputs ('out'), a page at a time.
export async function expandTx(txid, dir, offset = 0) {
  const v = await api(`/v1/transactions/${txid}`);
  const t = v.transaction;
  const node = addTx(txid, t.block_height);
  node.fee = t.fee;
  node.coinbase = t.coinbase;
  if (v.labels && v.labels.length) node.labels = v.labels.map((l) => l.label || l.name || JSON.stringify(l));
  if (dir === 'out') {
    const outs = t.outputs.filter((o) => o.address || o.value > 0);
    for (const o of outs.slice(offset, offset + PAGE)) {
      const a = addAddr(o.address || `${txid}:${o.vout}`, {});
      addEdge('o', txid, o.vout, node.id, a.id, o.value, t.block_height);
    }
    setMore(node.id, 'out', offset + PAGE, outs.length);
  } else {
    const ins = t.inputs.filter((i) => i.kind !== 'coinbase' && i.prev_txid);
    for (const i of ins.slice(offset, offset + PAGE)) {
      const a = addAddr(i.address || `${i.prev_txid}:${i.prev_vout}`, {});
      addEdge('s', i.prev_txid, i.prev_vout, a.id, node.id, i.value, t.block_height);
    }
    setMore(node.id, 'in', offset + PAGE, ins.length);
  }
}

// Add an address's receiving ('in') or spending ('out') transactions, a page of its
// outputs at a time. Hubs are refused unless `force`: an exchange has millions.
export async function expandAddr(address, dir, offset = 0, force = false) {
  const v = await api(`/v1/addresses/${encodeURIComponent(address)}?offset=${offset}&limit=${PAGE}`);
  const info = v.address;
  const a = addAddr(address, { entity: v.entity, outputs: info.output_count, first: info.first_seen_height, last: info.last_seen_height });
  if (v.attributions.length) {
    if (!a.category) {
      const x = v.attributions[0];
      a.category = x.category;
      a.why = `labelled ${x.name} [${x.category}] by ${x.source}`;
    }
    a.labels = [...new Set([...a.labels, ...v.attributions.map((x) => x.name)])];
  }
  if (!a.category) Object.assign(a, thiefCluster(v.entity));
  a.height = a.height || info.first_seen_height;
  if (isHub(a) && !force) return { hub: true, outputs: info.output_count };
  for (const o of info.outputs) {
    if (dir === 'in') {
      const t = addTx(o.txid, o.height);
      addEdge('o', o.txid, o.vout, t.id, a.id, o.value, o.height);
    } else if (o.spent_by) {
      const s = addTx(o.spent_by.txid, o.spent_height);
      addEdge('s', o.txid, o.vout, a.id, s.id, o.value, o.spent_height);
    }
  }
  setMore(a.id, dir, offset + PAGE, info.output_count);
  return { hub: false, outputs: info.output_count };
}

export async function addSubject(q) {
  if (/^0x[0-9a-fA-F]{40}([0-9a-fA-F]{24})?$/.test(q)) {
    throw new Error(`${q} is an Ethereum address or transaction: the flow graph draws Bitcoin only for now; search it (the box at the top) for its balances, movements and screening`);
  }
  if (/^[0-9a-fA-F]{64}$/.test(q)) {
    await expandTx(q.toLowerCase(), 'out');
    await expandTx(q.toLowerCase(), 'in');
    return 't:' + q.toLowerCase();
  }
  await expandAddr(q, 'in');
  await expandAddr(q, 'out');
  G.nodes.get('a:' + q).pinned = true;
  return 'a:' + q;
}

export async function findPaths(from, to, hops) {
  const r = await api(`/v1/paths?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&max_hops=${hops}`);
  G.highlight = new Set();
  for (const p of r.paths) {
    for (const s of p) {
      const a = addAddr(s.from, {});
      const b = addAddr(s.to, {});
      const t = addTx(s.txid, s.height);
      a.pinned = b.pinned = true;
      // The step's exact outputs are not named by the path: edges keyed by tx and address.
      const e1 = `p:${s.txid}:${s.from}`;
      const e2 = `p:${s.txid}:>${s.to}`;
      if (![...G.edges.values()].some((e) => e.source === a.id && e.target === t.id)) G.edges.set(e1, { id: e1, source: a.id, target: t.id, value: null, tainted: 0, height: s.height, txid: s.txid });
      if (![...G.edges.values()].some((e) => e.source === t.id && e.target === b.id)) G.edges.set(e2, { id: e2, source: t.id, target: b.id, value: s.value, tainted: 0, height: s.height, txid: s.txid });
      for (const id of [a.id, b.id, t.id]) G.highlight.add(id);
    }
  }
  return r;
}

// ---- what is drawn: clusters collapsed, filters applied, merged parallel edges ----

function shown(id) {
  const n = G.nodes.get(id);
  return n && n.kind === 'addr' && n.entity !== null && n.entity !== undefined && G.collapsed.has(n.entity) ? 'e:' + n.entity : id;
}

export function heightRange() {
  let lo = Infinity;
  let hi = -Infinity;
  for (const e of G.edges.values()) if (e.height !== null && e.height !== undefined) { lo = Math.min(lo, e.height); hi = Math.max(hi, e.height); }
  return lo === Infinity ? null : [lo, hi];
}

export function visible() {
  const f = G.filters;
  const edges = new Map();
  const nodes = new Map();
  for (const e of G.edges.values()) {
    if (f.minHeight !== null && e.height < f.minHeight) continue;
    if (f.maxHeight !== null && e.height > f.maxHeight) continue;
    if (f.minSats > 0 && (e.value ?? 0) < f.minSats && e.tainted < f.minSats) continue;
    const s = shown(e.source);
    const t = shown(e.target);
    const key = s + '>' + t;
    const m = edges.get(key) || { id: key, source: s, target: t, value: 0, tainted: 0, count: 0, height: e.height, parts: [] };
    m.value += e.value || 0;
    m.tainted += e.tainted || 0;
    m.count += 1;
    m.parts.push(e.id);
    m.height = Math.min(m.height, e.height);
    edges.set(key, m);
  }
  const want = new Set();
  for (const e of edges.values()) { want.add(e.source); want.add(e.target); }
  for (const n of G.nodes.values()) if (n.pinned || n.kind === 'more') want.add(shown(n.id));
  const byEntity = new Map();
  if (G.collapsed.size) {
    for (const n of G.nodes.values()) {
      if (n.kind === 'addr' && G.collapsed.has(n.entity)) {
        if (!byEntity.has(n.entity)) byEntity.set(n.entity, []);
        byEntity.get(n.entity).push(n);
      }
    }
  }
  for (const id of want) {
    if (id.startsWith('e:')) {
      const ent = Number(id.slice(2));
      const members = byEntity.get(ent) || [];
      const m0 = members.find((m) => m.category);
      const cat = m0 ? m0.category : null;
      const name = members.flatMap((m) => m.labels)[0];
      nodes.set(id, { id, kind: 'entity', entity: ent, category: cat, why: m0 ? m0.why : undefined, members: members.length, label: name ? `${name} (${members.length})` : `entity ${ent} (${members.length})` });
    } else if (G.nodes.has(id)) nodes.set(id, G.nodes.get(id));
  }
  return { nodes, edges };
}

// Cut here rather than by cytoscape's ellipsis wrapping, which measures the text again and
// again: a fifth of a first paint's time.
const LABEL_MAX = 22;
function label(n) {
  const a = G.annotations[n.id];
  const text = a && a.name ? a.name
    : n.kind === 'tx' ? short(n.txid, 4)
      : n.kind === 'addr' ? (n.labels[0] ? n.labels[0].slice(0, 12) + ' · ' : '') + short(n.address, 5)
        : n.label || n.id;
  return text.length > LABEL_MAX ? text.slice(0, LABEL_MAX - 1) + '…' : text;
}

// Columns by block height: left to right in time. Addresses sit between the transaction
// that paid them and the one that spent them.
function layout(v) {
  const heights = [...new Set([...v.nodes.values()].filter((n) => n.kind === 'tx').map((n) => n.height))].sort((a, b) => a - b);
  const col = new Map(heights.map((h, i) => [h, i]));
  const x = new Map();
  for (const n of v.nodes.values()) if (n.kind === 'tx') x.set(n.id, col.get(n.height) * 2);
  for (const e of v.edges.values()) {
    const t = v.nodes.get(e.target);
    if (t && t.kind !== 'tx' && x.has(e.source)) x.set(e.target, Math.min(x.get(e.target) ?? Infinity, x.get(e.source) + 1));
  }
  for (const e of v.edges.values()) {
    const s = v.nodes.get(e.source);
    if (s && s.kind !== 'tx' && !x.has(e.source) && x.has(e.target)) x.set(e.source, x.get(e.target) - 1);
  }
  for (const n of v.nodes.values()) {
    if (!x.has(n.id)) {
      const p = n.kind === 'more' ? x.get(G.more.get(n.id)?.of) : undefined;
      x.set(n.id, p !== undefined ? p + 1 : (n.height !== undefined && col.size ? nearestCol(heights, n.height) * 2 + 1 : 0));
    }
  }
  const perCol = new Map();
  const pos = {};
  for (const n of v.nodes.values()) {
    const c = x.get(n.id);
    const k = perCol.get(c) || 0;
    perCol.set(c, k + 1);
    pos[n.id] = { x: c * 110, y: k * 60 };
  }
  for (const n of v.nodes.values()) {
    const k = perCol.get(x.get(n.id));
    pos[n.id].y -= ((k - 1) * 60) / 2;
    if (G.positions[n.id]) pos[n.id] = { ...G.positions[n.id] };
  }
  return pos;
}

function nearestCol(heights, h) {
  let best = 0;
  for (let i = 0; i < heights.length; i++) if (heights[i] <= h) best = i;
  return best;
}

export function elements() {
  const v = visible();
  const pos = layout(v);
  const els = [];
  for (const n of v.nodes.values()) {
    const ann = G.annotations[n.id] || {};
    const cat = n.kind === 'tx' ? null : categoryOf(n.category);
    els.push({
      group: 'nodes',
      data: {
        id: n.id, kind: n.kind, label: label(n), hub: isHub(n) && n.kind === 'addr', dormant: !!n.dormant,
        colour: ann.colour || (n.kind === 'tx' ? '#cbd5e0' : COLOURS[cat] || COLOURS.unknown), category: cat || '',
      },
      position: pos[n.id],
      classes: G.highlight.has(n.id) ? 'hl' : '',
    });
  }
  for (const e of v.edges.values()) {
    const amount = e.value ? btcShort(e.value) : '';
    const lbl = e.tainted > 0 ? `${amount} · tainted ${btcShort(e.tainted)}` : amount;
    els.push({
      group: 'edges',
      data: {
        id: e.id, source: e.source, target: e.target, value: e.value, tainted: e.tainted, label: lbl,
        colour: e.tainted > 0 ? '#e53e3e' : '#a0aec0',
        w: e.tainted > 0 ? Math.min(8, 1.5 + Math.log10(1 + e.tainted / 1e6)) : 1,
      },
      classes: G.highlight.has(e.source) && G.highlight.has(e.target) ? 'hl' : '',
    });
  }
  return els;
}

const STYLE = [
  { selector: 'node', style: { label: 'data(label)', 'font-size': 9, 'text-valign': 'bottom', 'text-margin-y': 3, 'background-color': 'data(colour)', width: 18, height: 18, 'min-zoomed-font-size': 6 } },
  { selector: 'node[kind="tx"]', style: { shape: 'round-rectangle', width: 12, height: 12, 'border-width': 1, 'border-color': '#718096' } },
  { selector: 'node[kind="entity"]', style: { shape: 'hexagon', width: 32, height: 32 } },
  { selector: 'node[kind="more"]', style: { shape: 'tag', 'background-color': '#edf2f7', 'border-width': 1, 'border-style': 'dashed', 'border-color': '#4a5568', width: 26 } },
  { selector: 'node[?hub]', style: { 'border-width': 3, 'border-color': '#2d3748' } },
  { selector: 'node[?dormant]', style: { 'border-width': 3, 'border-color': '#e53e3e', 'border-style': 'double' } },
  { selector: 'edge', style: { 'curve-style': 'straight', 'target-arrow-shape': 'triangle', width: 'data(w)', 'line-color': 'data(colour)', 'target-arrow-color': 'data(colour)', label: 'data(label)', 'font-size': 7, 'text-rotation': 'autorotate', 'min-zoomed-font-size': 7, 'text-background-color': '#fff', 'text-background-opacity': 0.85, 'arrow-scale': 0.7 } },
  { selector: '.hl', style: { 'line-color': '#d69e2e', 'target-arrow-color': '#d69e2e', 'border-color': '#d69e2e', 'border-width': 4 } },
  { selector: ':selected', style: { 'border-width': 3, 'border-color': '#3182ce', 'line-color': '#3182ce' } },
];

// Past this many edges the drawing is kept cheap: straight (haystack) edges without arrows
// or drawn labels, node labels unwrapped. The amounts stay in the data: hover, side panel.
export const BIG = 1500;
const STYLE_BIG = [
  ...STYLE.map((r) => (r.selector === 'node' ? { selector: 'node', style: { ...r.style, 'min-zoomed-font-size': 10 } } : r)).filter((r) => r.selector !== 'edge'),
  { selector: 'edge', style: { 'curve-style': 'haystack', 'haystack-radius': 0, width: 'data(w)', 'line-color': 'data(colour)', opacity: 0.7 } },
];
let bigMode = false;

// Fit from the node positions alone: measuring thousands of labels for a bounding box
// costs seconds.
function fit(els) {
  let x1 = Infinity, y1 = Infinity, x2 = -Infinity, y2 = -Infinity;
  for (const e of els) {
    if (e.group !== 'nodes') continue;
    const p = e.position;
    x1 = Math.min(x1, p.x); y1 = Math.min(y1, p.y); x2 = Math.max(x2, p.x); y2 = Math.max(y2, p.y);
  }
  if (x1 === Infinity) return;
  const pad = 40;
  const w = cy.width() - 2 * pad;
  const h = cy.height() - 2 * pad;
  const z = Math.max(cy.minZoom(), Math.min(2, w / Math.max(1, x2 - x1), h / Math.max(1, y2 - y1)));
  cy.viewport({ zoom: z, pan: { x: pad + (w - (x2 - x1) * z) / 2 - x1 * z, y: pad + (h - (y2 - y1) * z) / 2 - y1 * z } });
}

// ---- the page ----

let cy = null;
let root = null;

export function getCy() {
  return cy;
}

// Bring cytoscape to `els` by difference: elements that stay keep their computed style and
// are only moved or given new data. Removing and re-adding everything made collapsing the
// clusters of a 5,900-node graph cost seconds of style recalculation.
function sync(els) {
  const want = new Map(els.map((e) => [e.data.id, e]));
  const gone = cy.elements().filter((x) => !want.has(x.id()));
  // Edges first: a node is removed with its edges anyway.
  gone.edges().remove();
  gone.nodes().remove();
  const add = [];
  const moved = [];
  for (const e of els) {
    const x = cy.getElementById(e.data.id);
    if (x.empty()) { add.push(e); continue; }
    const d = x.data();
    if (Object.keys(e.data).some((k) => d[k] !== e.data[k])) x.data(e.data);
    if (e.position && !x.grabbed()) {
      const p = x.position();
      if (p.x !== e.position.x || p.y !== e.position.y) moved.push(x[0]);
    }
    if ((e.classes || '') !== x.classes().join(' ')) x.classes(e.classes || '');
  }
  // One call for all moves: one event, one bounding-box update, not one per node.
  if (moved.length) cy.collection(moved).positions((n) => want.get(n.id()).position);
  cy.add(add);
}

export function redraw() {
  if (!cy) return;
  const t0 = performance.now();
  for (const n of cy.nodes()) if (n.grabbed()) G.positions[n.id()] = { ...n.position() };
  const els = elements();
  const big = els.length - G.nodes.size > BIG || els.length > 3 * BIG;
  if (big !== bigMode) {
    bigMode = big;
    cy.style(big ? STYLE_BIG : STYLE);
  }
  cy.batch(() => sync(els));
  fit(els);
  const ms = performance.now() - t0;
  document.body.dataset.graphNodes = String(cy.nodes().length);
  document.body.dataset.graphEdges = String(cy.edges().length);
  document.body.dataset.drawMs = ms.toFixed(1);
  if (root) {
    const s = root.querySelector('#graph-stats');
    if (s) s.textContent = `${cy.nodes().length} nodes · ${cy.edges().length} edges · drawn in ${ms.toFixed(0)} ms`;
    syncSlider();
  }
}

function syncSlider() {
  const r = heightRange();
  const lo = root.querySelector('#h-min');
  const hi = root.querySelector('#h-max');
  if (!r || !lo) return;
  for (const s of [lo, hi]) { s.min = r[0]; s.max = r[1]; }
  lo.value = G.filters.minHeight ?? r[0];
  hi.value = G.filters.maxHeight ?? r[1];
  root.querySelector('#h-label').textContent = `heights ${lo.value}–${hi.value}`;
}

export async function graphView(view, q) {
  root = el('div', { id: 'graph-page' });
  const side = el('div', { id: 'side' }, el('p', { class: 'muted' }, 'Click a node for its details; double-click to expand it. Drag to move; the positions are saved with the investigation.'));
  const tip = el('div', { id: 'tooltip', hidden: true });
  const msg = el('div', { id: 'graph-msg' });
  const { investigationControls } = await import('./investigation.js');
  root.append(
    el('div', { class: 'controls' },
      el('h1', {}, G.trace ? `Graph · case ${G.trace.case} · ${G.trace.model}` : 'Graph'),
      el('span', { id: 'graph-stats', class: 'muted' })),
    el('div', { class: 'controls' },
      el('form', { id: 'add-form', onsubmit: async (ev) => { ev.preventDefault(); await guard(msg, async () => { const id = await addSubject(ev.target.elements.subject.value.trim()); redraw(); select(id); }); } },
        el('input', { name: 'subject', placeholder: 'add an address or txid', size: 40 }), el('button', {}, 'Add')),
      el('form', { id: 'path-form', onsubmit: async (ev) => {
        ev.preventDefault();
        const f = ev.target.elements;
        await guard(msg, async () => {
          const r = await findPaths(f.from.value.trim(), f.to.value.trim(), Number(f.hops.value));
          redraw();
          msg.replaceChildren(el('div', { class: r.paths.length ? 'ok' : 'note', id: 'path-result' },
            r.paths.length ? `${r.paths.length} shortest path(s) of ${r.hops} hop(s), ${r.direction}` : `no path within ${f.hops.value} hops in either direction${r.truncated ? ' (search stopped at its work bound)' : ''}`,
            r.hubs_skipped.length ? ` · ${r.hubs_skipped.length} hub(s) not walked through` : ''));
        });
      } },
        el('input', { name: 'from', placeholder: 'paths from address', size: 22 }),
        el('input', { name: 'to', placeholder: 'to address', size: 22 }),
        el('label', {}, ' within ', el('input', { name: 'hops', type: 'number', min: 1, max: 8, value: 4, style: 'width:3.5em' }), ' hops '),
        el('button', {}, 'Find paths'))),
    el('div', { class: 'controls' },
      el('label', {}, 'from ', el('input', { id: 'h-min', type: 'range', oninput: onSlide })),
      el('label', {}, 'to ', el('input', { id: 'h-max', type: 'range', oninput: onSlide })),
      el('span', { id: 'h-label', class: 'muted' }),
      el('label', {}, 'min amount (BTC) ', el('input', { id: 'min-btc', type: 'number', step: 'any', min: 0, value: G.filters.minSats / 1e8, style: 'width:7em', onchange: (ev) => { G.filters.minSats = Math.round(Number(ev.target.value || 0) * 1e8); redraw(); } })),
      el('button', { id: 'collapse-all', onclick: () => { toggleAllClusters(); redraw(); } }, 'Collapse/expand all clusters'),
      el('button', { onclick: () => { G.positions = {}; redraw(); } }, 'Re-layout'),
      investigationControls(msg)),
    el('div', { class: 'legend' }, LEGEND.map((c) => el('span', {}, el('i', { style: `background:${COLOURS[c]}` }), legendName(c))),
      el('span', {}, el('i', { style: 'background:#cbd5e0;border-radius:2px' }), 'transaction'),
      el('span', {}, el('i', { style: 'background:#e53e3e;height:3px;border-radius:0' }), 'tainted flow')),
    msg,
    el('div', { id: 'graph-wrap' }, el('div', { id: 'cy' }), side),
    tip,
  );
  view.append(root);
  const big = G.edges.size > BIG;
  bigMode = big;
  cy = cytoscape({
    container: root.querySelector('#cy'),
    style: big ? STYLE_BIG : STYLE,
    layout: { name: 'preset' },
    minZoom: 0.02,
    maxZoom: 4,
    textureOnViewport: big,
    hideEdgesOnViewport: big,
    motionBlur: false,
    pixelRatio: big ? 1 : 'auto',
  });
  cy.on('tap', 'node', (ev) => showDetails(ev.target.id(), side, msg));
  cy.on('tap', 'edge', (ev) => showEdge(ev.target, side));
  cy.on('dbltap', 'node', (ev) => guard(msg, () => expandBoth(ev.target.id(), side, msg)));
  cy.on('dragfree', 'node', (ev) => { G.positions[ev.target.id()] = { ...ev.target.position() }; });
  cy.on('mouseover', 'node', (ev) => hover(ev, tip));
  cy.on('mouseout', 'node', () => { tip.hidden = true; });
  const s = q && q.get('add');
  let added = null;
  if (s) await guard(msg, async () => { added = await addSubject(s); });
  redraw();
  if (added) select(added);
  return { leave() { if (cy) { for (const n of cy.nodes()) if (G.positions[n.id()]) G.positions[n.id()] = { ...n.position() }; cy.destroy(); cy = null; root = null; } } };
}

function onSlide() {
  const lo = Number(root.querySelector('#h-min').value);
  const hi = Number(root.querySelector('#h-max').value);
  G.filters.minHeight = Math.min(lo, hi);
  G.filters.maxHeight = Math.max(lo, hi);
  redraw();
}

function toggleAllClusters() {
  const ents = new Set([...G.nodes.values()].filter((n) => n.kind === 'addr' && n.entity !== null && n.entity !== undefined).map((n) => n.entity));
  if (G.collapsed.size) { G.collapsed.clear(); return; }
  const count = new Map();
  for (const n of G.nodes.values()) if (n.kind === 'addr' && ents.has(n.entity)) count.set(n.entity, (count.get(n.entity) || 0) + 1);
  for (const [e, k] of count) if (k > 1) G.collapsed.add(e);
}

export function select(id) {
  if (!cy) return;
  const n = cy.getElementById(id);
  if (n.nonempty()) {
    cy.elements().unselect();
    n.select();
    n.emit('tap');
  }
}

async function guard(msg, f) {
  try {
    msg.replaceChildren();
    await f();
  } catch (e) {
    msg.replaceChildren(errorBox(e));
  }
}

async function expandBoth(id, side, msg) {
  const t0 = performance.now();
  const n = G.nodes.get(id);
  if (!n) return;
  if (n.kind === 'more') {
    const m = G.more.get(id);
    const of = G.nodes.get(m.of);
    if (of.kind === 'tx') await expandTx(of.txid, m.dir, m.offset);
    else await expandAddr(of.address, m.dir, m.offset, true);
  } else if (n.kind === 'tx') {
    await expandTx(n.txid, 'in');
    await expandTx(n.txid, 'out');
  } else if (n.kind === 'addr') {
    const r = await expandAddr(n.address, 'in');
    if (r.hub) {
      msg.replaceChildren(el('div', { class: 'note' }, `${short(n.address)} is a hub (${r.outputs} outputs${SERVICE.has(categoryOf(n.category)) ? ', a service' : ''}): not expanded by default. Use "expand anyway" in the side panel to add ${PAGE} at a time.`));
      redraw();
      return showDetails(id, side, msg);
    }
    await expandAddr(n.address, 'out');
  } else if (n.kind === 'entity') {
    G.collapsed.delete(n.entity);
  }
  redraw();
  document.body.dataset.expandMs = (performance.now() - t0).toFixed(1);
}

const hoverCache = new Map();

async function hover(ev, tip) {
  const id = ev.target.id();
  const n = G.nodes.get(id);
  const oe = ev.originalEvent;
  tip.style.left = (oe ? oe.clientX + 12 : 0) + 'px';
  tip.style.top = (oe ? oe.clientY + 12 : 0) + 'px';
  tip.hidden = false;
  if (!n || n.kind !== 'addr' || n.address.includes(':')) {
    tip.textContent = ev.target.data('label');
    return;
  }
  tip.textContent = n.address + ' …';
  let a = hoverCache.get(n.address);
  if (!a) {
    try {
      a = (await api(`/v1/addresses/${encodeURIComponent(n.address)}?limit=0`)).attributions;
    } catch (e) {
      a = [];
    }
    hoverCache.set(n.address, a);
  }
  if (tip.hidden) return;
  tip.replaceChildren(el('div', { class: 'mono' }, n.address),
    a.length ? a.map((x) => el('div', {}, `${x.name} [${x.category}] — source: ${x.source}`)) : el('div', {}, 'no labels'),
    n.labels.length ? el('div', {}, 'trace: ' + n.labels.join(', ')) : null);
}

function annotationForm(id) {
  const a = G.annotations[id] || {};
  return el('form', { class: 'card', id: 'annotate', onsubmit: (ev) => {
    ev.preventDefault();
    const f = ev.target.elements;
    G.annotations[id] = { name: f.name.value, colour: f.colour.value === '#000001' ? '' : f.colour.value, note: f.note.value };
    redraw();
    select(id);
  } },
  el('h2', {}, 'Annotation'),
  el('label', {}, 'name ', el('input', { name: 'name', value: a.name || '' })), ' ',
  el('label', {}, 'colour ', el('input', { name: 'colour', type: 'color', value: a.colour || '#000001' })),
  el('textarea', { name: 'note', rows: 3, style: 'width:100%', placeholder: 'note' }, a.note || ''),
  el('button', {}, 'Save annotation'));
}

function risk(s) {
  return el('div', {},
    el('span', { class: `risk risk-${s.risk}`, id: 'side-risk' }, s.risk),
    s.fired_rules.length ? el('ul', {}, s.fired_rules.map((r) => el('li', {}, `${r.rule} (${r.level}): ${r.description} — ${btc(r.sats)} BTC, ${pct(r.share)}`))) : el('p', { class: 'muted' }, 'no rule fired'),
    s.exposure.length ? table(['category', 'type', 'dir', 'BTC', 'share', 'hops', 'parties'],
      s.exposure.map((x) => [x.category, x.type, x.direction, btc(x.sats), pct(x.share), x.min_hops, x.entities.join(', ')])) : null);
}

async function showDetails(id, side, msg) {
  const n = G.nodes.get(id) || (id.startsWith('e:') ? { id, kind: 'entity', entity: Number(id.slice(2)), labels: [] } : null);
  if (!n) return;
  side.replaceChildren(el('p', { class: 'muted' }, 'loading…'));
  const parts = [];
  const btn = (text, f) => el('button', { onclick: () => guard(msg, async () => { await f(); redraw(); select(id); }) }, text);
  try {
    if (n.kind === 'more') {
      const m = G.more.get(id);
      parts.push(el('h2', {}, n.label), el('p', {}, `More ${m.dir === 'in' ? 'inputs' : 'outputs'} of ${short(m.of.slice(2))}.`), btn(`Add the next ${PAGE}`, () => expandBoth(id, side, msg)));
    } else if (n.kind === 'tx') {
      const [v, s] = await Promise.all([api(`/v1/transactions/${n.txid}`), api(`/v1/screen/transaction/${n.txid}`).catch((e) => e)]);
      const t = v.transaction;
      parts.push(el('h2', {}, 'Transaction'), el('div', { class: 'mono' }, t.txid),
        table(['', ''], [['height', t.block_height], ['time', new Date(t.block_time * 1000).toISOString()], ['inputs', t.inputs.length], ['outputs', t.outputs.length], ['value out', btc(t.output_value) + ' BTC'], ['fee', t.fee === null ? 'unknown' : btc(t.fee) + ' BTC'], ['labels', v.labels.map((l) => l.label || JSON.stringify(l)).join(', ') || '–']]),
        el('div', { class: 'controls' }, btn('Expand inputs', () => expandTx(n.txid, 'in')), btn('Expand outputs', () => expandTx(n.txid, 'out')), el('a', { href: `#/screen?s=${t.txid}` }, 'screen')),
        el('h2', {}, 'Risk'), s instanceof Error ? errorBox(s) : risk(s));
    } else if (n.kind === 'addr' && !n.address.includes(':')) {
      const [v, s] = await Promise.all([api(`/v1/addresses/${encodeURIComponent(n.address)}?limit=0`), api(`/v1/screen/address/${encodeURIComponent(n.address)}`).catch((e) => e)]);
      const a = v.address;
      let ent = null;
      if (v.entity !== null) ent = await api(`/v1/entities/${v.entity}?limit=0`).catch(() => null);
      n.entity = v.entity;
      n.outputs = a.output_count;
      const taintIn = [...G.edges.values()].filter((e) => e.target === id).reduce((x, e) => x + e.tainted, 0);
      parts.push(el('h2', {}, 'Address'), el('div', { class: 'mono', id: 'side-address' }, a.address),
        table(['', ''], [
          ['balance', btc(a.balance) + ' BTC'], ['received / sent', `${btc(a.received)} / ${btc(a.sent)}`],
          ['outputs / txs', `${a.output_count} / ${a.tx_count}`], ['first / last seen', `${a.first_seen_height ?? '–'} / ${a.last_seen_height ?? '–'}`],
          ['tainted in (this graph)', G.trace ? `${btc(taintIn)} BTC under ${G.trace.model}` : 'no case trace loaded'],
          ['entity', v.entity === null ? 'no clustering' : `${v.entity}${ent ? `, cluster of ${ent.summary.size} address(es), seen ${ent.summary.first_seen_height}–${ent.summary.last_seen_height}` : ''}`],
          ['colour', el('span', { id: 'side-why' }, `${legendName(categoryOf(n.category))}: ${colourWhy(n)}`)],
        ]),
        el('h2', {}, 'Labels'),
        v.attributions.length ? table(['name', 'category', 'source'], v.attributions.map((x) => [x.name, x.category, x.source])) : el('p', { class: 'muted' }, 'no labels'),
        el('div', { class: 'controls' },
          btn('Expand receiving txs', async () => { const r = await expandAddr(n.address, 'in'); if (r.hub) msg.replaceChildren(el('div', { class: 'note' }, `hub with ${r.outputs} outputs: use "expand anyway"`)); }),
          btn('Expand spending txs', async () => { const r = await expandAddr(n.address, 'out'); if (r.hub) msg.replaceChildren(el('div', { class: 'note' }, `hub with ${r.outputs} outputs: use "expand anyway"`)); }),
          isHub(n) ? btn(`Expand anyway (${PAGE})`, async () => { await expandAddr(n.address, 'in', 0, true); await expandAddr(n.address, 'out', 0, true); }) : null,
          v.entity !== null ? btn('Collapse cluster', () => { G.collapsed.add(v.entity); }) : null,
          el('a', { href: `#/screen?s=${encodeURIComponent(a.address)}` }, 'screen')),
        el('h2', {}, 'Risk'), s instanceof Error ? errorBox(s) : risk(s));
    } else if (n.kind === 'entity') {
      const e = await api(`/v1/entities/${n.entity}?limit=20`);
      const shownAs = visible().nodes.get(id) || n;
      parts.push(el('h2', {}, `Entity ${n.entity}`),
        table(['', ''], [['colour', el('span', { id: 'side-why' }, `${legendName(categoryOf(shownAs.category))}: ${colourWhy(shownAs)}`)], ['addresses', e.summary.size], ['balance', btc(e.summary.balance) + ' BTC'], ['received / sent', `${btc(e.summary.received)} / ${btc(e.summary.sent)}`], ['transactions', e.summary.tx_count], ['first / last seen', `${e.summary.first_seen_height} / ${e.summary.last_seen_height}`]]),
        el('h2', {}, 'Labels'), e.attributions.length ? table(['name', 'category', 'source'], e.attributions.map((x) => [x.name, x.category, x.source])) : el('p', { class: 'muted' }, 'no labels'),
        el('div', { class: 'controls' }, btn('Expand cluster', () => { G.collapsed.delete(n.entity); })),
        el('h2', {}, 'Addresses (first 20)'), el('ul', {}, e.addresses.map((x) => el('li', { class: 'mono' }, x))));
    } else {
      parts.push(el('h2', {}, 'Output'), el('div', { class: 'mono' }, n.address), el('p', {}, 'An output without an address (bare multisig or non-standard script).'));
    }
  } catch (e) {
    parts.push(errorBox(e));
  }
  if (n.kind !== 'more') parts.push(annotationForm(id));
  side.replaceChildren(...parts);
}

function showEdge(edge, side) {
  const d = edge.data();
  const parts = d.id.includes('>') ? (visible().edges.get(d.id) || { parts: [] }).parts : [];
  const rows = parts.map((p) => G.edges.get(p)).filter(Boolean);
  side.replaceChildren(el('h2', {}, 'Flow'),
    table(['', ''], [['amount', d.value ? btc(d.value) + ' BTC' : '–'], ['tainted', G.trace ? `${btc(d.tainted)} BTC under ${G.trace.model} (case ${G.trace.case})` : 'no case trace loaded'], ['outputs', rows.length]]),
    table(['output', 'BTC', 'tainted', 'height'], rows.slice(0, 50).map((r) => [r.vout !== undefined ? `${short(r.txid)}:${r.vout}` : short(r.txid), r.value ? btc(r.value) : '–', btc(r.tainted), r.height])),
    el('p', { class: 'muted' }, 'Tainted amounts are the trace\'s exact per-output numbers (integer satoshis); "Replay" on the investigation re-runs the trace and checks them.'));
}
