// Benchmark, not a test (scripts/bench-workbench.sh runs it): the flow graph's first paint.
// For a case graph of about 500 nodes (the demo case cut at the max_hops that first gives
// 500 or more) and for the whole demo case, WB_RUNS times each in a fresh page: open the
// case page (its trace request is timed apart), click "Open the flow graph", and time until
// the first frame after the graph is in cytoscape (two animation frames: the draw happens
// in the first).
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const E = process.env;
const runs = Number(E.WB_RUNS || 5);
const headers = { 'X-API-Key': E.WB_KEY };

// Nodes the workbench draws for a trace: a node per transaction and per address.
function graphNodes(trace) {
  const n = new Set();
  for (const r of trace.outputs) {
    n.add('t:' + r.txid);
    n.add('a:' + (r.address || `${r.txid}:${r.vout}`));
    if (r.spent_by) n.add('t:' + r.spent_by);
  }
  return n.size;
}

async function trace(q) {
  const r = await fetch(`${E.WB_URL}/v1/cases/${E.WB_CASE}/trace?model=fifo&max_rows=200000${q}`, { headers });
  return (await r.json()).trace;
}

const full = graphNodes(await trace(''));
let cut = null;
for (let h = 1; h <= 30; h++) {
  const n = graphNodes(await trace(`&max_hops=${h}`));
  if (n >= 500) { cut = { h, n }; break; }
}
const cases = [];
if (cut) cases.push({ name: `${cut.n} nodes (max_hops ${cut.h})`, q: `&max_hops=${cut.h}` });
cases.push({ name: `${full} nodes (whole case)`, q: '' });

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-bench-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: E.WB_CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  viewport: { width: 1400, height: 900 },
});
const page = ctx.pages()[0] || await ctx.newPage();
await page.goto(E.WB_URL + '/');
await page.evaluate((k) => sessionStorage.setItem('cointrail.key', k), E.WB_KEY);

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
console.log(`chromium ${ctx.browser() ? ctx.browser().version() : ''}; ${runs} runs each; medians (min–max) in ms`);
for (const c of cases) {
  const load = [];
  const paint = [];
  const draw = [];
  for (let i = 0; i < runs; i++) {
    await page.goto('about:blank');
    const t0 = Date.now();
    await page.goto(`${E.WB_URL}/#/case/${E.WB_CASE}?model=fifo${c.q}`);
    await page.waitForSelector('#open-graph', { timeout: 120000 });
    load.push(Date.now() - t0);
    const r = await page.evaluate(() => new Promise((resolve) => {
      const t = performance.now();
      document.querySelector('#open-graph').click();
      const wait = () => {
        if (Number(document.body.dataset.graphNodes) > 0) {
          requestAnimationFrame(() => requestAnimationFrame(() => resolve({ paint: performance.now() - t, draw: Number(document.body.dataset.drawMs), nodes: Number(document.body.dataset.graphNodes) })));
        } else setTimeout(wait, 1);
      };
      wait();
    }));
    paint.push(r.paint);
    // Interactive: 20 pan/zoom steps, each timed to the frame that shows it.
    const steps = await page.evaluate(async () => {
      const { getCy } = await import('/ui/graph.js');
      const cy = getCy();
      const frame = () => new Promise((res) => requestAnimationFrame(() => res()));
      const ts = [];
      for (let i = 0; i < 20; i++) {
        const t = performance.now();
        if (i % 2) cy.panBy({ x: 40, y: 10 }); else cy.zoom({ level: cy.zoom() * (i % 4 ? 1.15 : 0.87), renderedPosition: { x: 500, y: 400 } });
        await frame();
        await frame();
        ts.push(performance.now() - t);
      }
      return ts;
    });
    (c.steps ||= []).push(...steps);
    // Expanding a node (issue 17: < 200 ms): double-click nodes until one brings new
    // neighbours in (a tx whose inputs are not drawn, an address with other spends), timed
    // from the double-click to the frame that shows them (the API request included).
    const ex = await page.evaluate(async () => {
      const { getCy } = await import('/ui/graph.js');
      const cy = getCy();
      const frame = () => new Promise((res) => requestAnimationFrame(() => res()));
      const candidates = [...cy.nodes('[kind="tx"]').toArray().slice(0, 6), ...cy.nodes('[kind="address"]').toArray().slice(-6)];
      for (const n of candidates) {
        const before = Number(document.body.dataset.graphNodes);
        const t = performance.now();
        n.emit('dbltap');
        while (Number(document.body.dataset.graphNodes) <= before && performance.now() - t < 3000) {
          await new Promise((res) => setTimeout(res, 1));
        }
        if (Number(document.body.dataset.graphNodes) > before) {
          await frame(); await frame();
          return performance.now() - t;
        }
      }
      return null;
    });
    if (ex !== null) (c.expand ||= []).push(ex);
    draw.push(r.draw);
    if (i === 0) c.nodes = r.nodes;
    await page.evaluate(() => { delete document.body.dataset.graphNodes; });
  }
  const f = (xs) => `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;
  console.log(`${c.name}, ${c.nodes} drawn: first paint ${f(paint)} [of which redraw ${f(draw)}]; case page with trace request ${f(load)}; a pan/zoom step to its frame ${f(c.steps)}; expanding a node ${c.expand ? f(c.expand) : 'n/a (no node brought new neighbours)'}`);
}
await ctx.close();
fs.rmSync(profile, { recursive: true, force: true });
