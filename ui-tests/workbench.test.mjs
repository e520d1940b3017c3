// The workbench in a real browser: Debian's chromium driven by playwright-core. Started by
// crates/cli/tests/workbench.rs, which serves a simulated data dir and passes (env):
//   WB_URL, WB_KEY, WB_CASE, WB_SOURCE (the address a stolen output was at), WB_DEPOSIT
//   (TXID:VOUT, a stolen output), WB_EXPECT (JSON: node and edge counts of the FIFO trace
//   graph, `mule`: a tainted address one hop on, `path_to`: one it paid next),
//   WB_SHOTS (folder for screenshots and downloads), WB_BIN (the cointrail binary) and WB_DATA
//   (the served data dir: the test imports a label into it, as a colleague would).
// Prints "N passed, N failed" and exits non-zero on a failure.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { getDocument } from 'pdfjs-dist/legacy/build/pdf.mjs';

const E = process.env;
const shots = E.WB_SHOTS;
fs.mkdirSync(shots, { recursive: true });
const expect = JSON.parse(E.WB_EXPECT);
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-chromium-'));

// A fresh profile each run (playwright names it through launchPersistentContext).
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: E.WB_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1400, height: 900 },
  acceptDownloads: true,
});
const page = ctx.pages()[0] || await ctx.newPage();
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));
// Nothing may be loaded from anywhere but the service.
const foreign = [];
page.on('request', (r) => { if (!r.url().startsWith(E.WB_URL) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) foreign.push(r.url()); });

let passed = 0;
let failed = 0;
// WB_ONLY=regex runs only the matching steps (and the first, which gives the key): for
// working on one step against a server started by hand.
const only = E.WB_ONLY ? new RegExp(E.WB_ONLY) : null;
async function step(name, f) {
  if (only && passed + failed > 0 && !only.test(name)) return;
  const t0 = Date.now();
  try {
    await f();
    passed++;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
  await page.screenshot({ path: path.join(shots, name.replace(/\W+/g, '-') + '.png') }).catch(() => {});
}
const nodes = async () => Number(await page.evaluate(() => document.body.dataset.graphNodes));

await step('the key is asked once, then the cases list', async () => {
  await page.goto(E.WB_URL + '/');
  await page.waitForSelector('#key-dialog[open]', { timeout: 10000 });
  await page.fill('#key-input', E.WB_KEY);
  await page.click('#key-form button');
  await page.waitForSelector(`a[href="#/case/${E.WB_CASE}"]`, { timeout: 10000 });
  // Kept for the session: a reload does not ask again.
  await page.reload();
  await page.waitForSelector(`a[href="#/case/${E.WB_CASE}"]`, { timeout: 10000 });
  assert.equal(await page.isVisible('#key-dialog[open]'), false);
});

await step('case view: totals chart, destinations, dormant loot', async () => {
  await page.click(`a[href="#/case/${E.WB_CASE}"]`);
  await page.waitForSelector('#totals-chart', { timeout: 30000 });
  const text = await page.textContent('#totals-text');
  assert.match(text, new RegExp(`stolen ${expect.source_btc.replace('.', '\\.')} BTC`));
  assert.ok(await page.isVisible('text=Destinations by entity'));
  assert.ok(await page.isVisible('text=Dormant loot'));
});

await step('flow graph: the trace with tainted amounts on the edges, first paint timed', async () => {
  const t0 = Date.now();
  await page.click('#open-graph');
  await page.waitForFunction(() => Number(document.body.dataset.graphNodes) > 0, null, { timeout: 10000 });
  const ms = Date.now() - t0;
  assert.equal(await nodes(), expect.nodes);
  const labels = await page.evaluate(async () => {
    const { getCy } = await import('/ui/graph.js');
    return getCy().edges().map((e) => e.data('label'));
  });
  assert.ok(labels.some((l) => /tainted \d/.test(l)), 'an edge says its tainted amount');
  console.log(`     first paint ${ms} ms for ${expect.nodes} nodes (goal < 1000 for 500)`);
});

await step('thief colour comes from the case (whom the theft transaction paid), says why, and the truth agrees', async () => {
  const truth = path.join(E.WB_DATA, 'demo-chain/truth');
  const thiefEntity = fs.readFileSync(path.join(truth, 'entities.tsv'), 'utf8').split('\n').map((l) => l.split('\t')).find((f) => f[1] === 'thief' && f[2] === 'heist-0')[0];
  const truthThief = new Set(fs.readFileSync(path.join(truth, 'addresses.tsv'), 'utf8').split('\n').map((l) => l.split('\t')).filter((f) => f[1] === thiefEntity).map((f) => f[0]));
  const c = await page.evaluate(async () => {
    const { G } = await import('/ui/graph.js');
    const nodes = [...G.nodes.values()].filter((n) => n.kind === 'addr');
    return { thief: nodes.filter((n) => n.category === 'thief').map((n) => [n.id, n.address, n.why]), source: nodes.filter((n) => n.category === 'source').map((n) => n.address) };
  });
  assert.ok(c.thief.length > 0, 'the theft\'s recipients are coloured thief');
  for (const [, a, why] of c.thief) {
    assert.ok(truthThief.has(a), `${a} coloured thief, but the simulator's truth says it is not the thief's`);
    assert.match(why, /theft transaction [0-9a-f]{64}|same cluster as the thief/);
  }
  assert.ok(c.source.includes(E.WB_SOURCE), 'the stolen output\'s holder is the victim');
  assert.ok(!c.source.some((a) => truthThief.has(a)));
  await page.evaluate(async (id) => { const g = await import('/ui/graph.js'); g.select(id); }, c.thief[0][0]);
  await page.waitForSelector('#side-why', { timeout: 15000 });
  assert.match(await page.textContent('#side-why'), /^thief: paid by the theft transaction [0-9a-f]{64}/);
});

await step('clusters collapse into entities and expand again', async () => {
  const before = await nodes();
  await page.click('#collapse-all');
  const collapsed = await nodes();
  assert.ok(collapsed < before, `collapsing merged nodes (${before} → ${collapsed})`);
  await page.click('#collapse-all');
  assert.equal(await nodes(), before);
});

await step('switching the model redraws the graph', async () => {
  await page.goto(`${E.WB_URL}/#/case/${E.WB_CASE}?model=haircut`);
  await page.waitForSelector('#totals-chart', { timeout: 30000 });
  assert.equal(await page.inputValue('#model'), 'haircut');
  await page.click('#open-graph');
  await page.waitForSelector('text=· haircut');
});

await step('click a node to see its details, double-click to expand it', async () => {
  await page.evaluate(async () => { const g = await import('/ui/graph.js'); g.clearGraph(); });
  await page.goto(`${E.WB_URL}/#/graph?add=${expect.mule}`);
  await page.waitForSelector('#side-address', { timeout: 15000 });
  assert.equal((await page.textContent('#side-address')).trim(), expect.mule);
  await page.waitForSelector('#side-risk');
  const before = await nodes();
  const t0 = Date.now();
  await page.evaluate(async () => {
    const { getCy } = await import('/ui/graph.js');
    // The oldest transaction paying the mule: the theft, whose inputs are not drawn yet.
    const tx = getCy().nodes('[kind="tx"]').first();
    tx.emit('dbltap');
  });
  await page.waitForFunction((b) => Number(document.body.dataset.graphNodes) > b, before, { timeout: 10000 });
  console.log(`     expand took ${Date.now() - t0} ms (goal < 200)`);
});

await step('annotate, save the investigation and load it back with the same numbers', async () => {
  await page.fill('#annotate input[name=name]', 'the mule');
  await page.fill('#annotate textarea', 'first hop after the theft');
  await page.click('#annotate button');
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#save-inv')]);
  const file = path.join(shots, 'investigation.json');
  await dl.saveAs(file);
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.equal(doc.format, 'cointrail-investigation');
  assert.ok(Object.values(doc.annotations).some((a) => a.name === 'the mule'));
  const n = await nodes();
  await page.evaluate(async () => { const g = await import('/ui/graph.js'); g.clearGraph(); g.redraw(); });
  assert.equal(await nodes(), 0);
  await page.setInputFiles('#load-file', file);
  await page.waitForSelector('#replay-result');
  assert.equal(await nodes(), n);
  const names = await page.evaluate(async () => { const g = await import('/ui/graph.js'); return Object.values(g.G.annotations).map((a) => a.name); });
  assert.ok(names.includes('the mule'));
});

await step('a saved case trace replays to the same numbers', async () => {
  await page.goto(`${E.WB_URL}/#/case/${E.WB_CASE}?model=fifo`);
  await page.waitForSelector('#totals-chart', { timeout: 30000 });
  await page.click('#open-graph');
  await page.waitForFunction(() => Number(document.body.dataset.graphNodes) > 0);
  await page.click('#replay');
  await page.waitForSelector('#replay-result');
  assert.match(await page.textContent('#replay-result'), /the same numbers/);
});

await step('export a PNG of the graph (non-empty, right size) and an SVG', async () => {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export-png')]);
  const file = path.join(shots, 'graph.png');
  await dl.saveAs(file);
  const b = fs.readFileSync(file);
  assert.equal(b.subarray(1, 4).toString(), 'PNG');
  const w = b.readUInt32BE(16);
  const h = b.readUInt32BE(20);
  const bb = await page.evaluate(async () => {
    const { getCy } = await import('/ui/graph.js');
    const { pngScale } = await import('/ui/investigation.js');
    const r = getCy().elements().boundingBox();
    return { w: r.w, h: r.h, s: pngScale() };
  });
  // The whole graph's bounding box at the export's scale (within rounding).
  assert.ok(Math.abs(w - bb.w * bb.s) <= 4 && Math.abs(h - bb.h * bb.s) <= 4, `png ${w}x${h} vs box ${bb.w}x${bb.h} at ${bb.s}`);
  assert.ok(h > 10 && w > 10);
  const [sv] = await Promise.all([page.waitForEvent('download'), page.click('#export-svg')]);
  const sfile = path.join(shots, 'graph.svg');
  await sv.saveAs(sfile);
  const s = fs.readFileSync(sfile, 'utf8');
  assert.ok(s.startsWith('<svg') && (s.match(/<circle|<rect/g) || []).length >= expect.nodes);
});

await step('find the paths between two addresses', async () => {
  await page.fill('#path-form input[name=from]', expect.mule);
  await page.fill('#path-form input[name=to]', expect.path_to);
  await page.click('#path-form button');
  await page.waitForSelector('#path-result');
  assert.match(await page.textContent('#path-result'), /shortest path/);
});

await step('PDF of the case report (print stylesheet): produced, parses, names the case and its totals', async () => {
  await page.goto(`${E.WB_URL}/#/case/${E.WB_CASE}?model=fifo`);
  await page.waitForSelector('#totals-chart', { timeout: 30000 });
  const totals = await page.textContent('#totals-text');
  const amounts = totals.match(/\d+\.\d{8}/g);
  assert.equal(amounts.length, 6);
  // The button opens the browser's print dialog; headless, the test takes the place of the
  // user's "Save as PDF" with Chromium's print-to-PDF of the same page.
  await page.evaluate(() => { window.print = () => { window.__printed = (window.__printed || 0) + 1; }; });
  await page.click('#case-pdf');
  await page.waitForFunction(() => window.__printed === 1, null, { timeout: 10000 });
  const drawn = await page.locator('#print-report svg circle').count();
  assert.ok(drawn > 0, 'the report holds the graph');
  const t0 = Date.now();
  const file = path.join(shots, 'case-report.pdf');
  await page.pdf({ path: file, format: 'A4', printBackground: true });
  const bytes = fs.readFileSync(file);
  assert.equal(bytes.subarray(0, 5).toString(), '%PDF-');
  const doc = await getDocument({ data: new Uint8Array(bytes), verbosity: 0 }).promise;
  let text = '';
  for (let i = 1; i <= doc.numPages; i++) {
    const c = await (await doc.getPage(i)).getTextContent();
    text += c.items.map((x) => x.str).join(' ') + ' ';
  }
  const flat = text.replace(/\s+/g, ' ');
  assert.ok(flat.includes(`Case ${E.WB_CASE}`), 'the PDF names the case');
  assert.ok(flat.includes(`stolen ${expect.source_btc} BTC`), 'the PDF says what was stolen');
  for (const a of amounts) assert.ok(flat.includes(a), `the PDF holds the total ${a}`);
  // Only the report was printed: not the page's navigation.
  assert.ok(!flat.includes('Open the flow graph') && !flat.includes('Download case report'), 'the page around the report is not printed');
  console.log(`     PDF: ${doc.numPages} page(s), ${bytes.length} bytes, ${drawn} graph nodes, printed in ${Date.now() - t0} ms`);
  // Printing over, the page is the case page again.
  await page.evaluate(() => window.dispatchEvent(new Event('afterprint')));
  assert.equal(await page.locator('#print-report').count(), 0);
});

await step('search an address', async () => {
  await page.fill('#search-q', E.WB_SOURCE);
  await page.press('#search-q', 'Enter');
  await page.waitForSelector('#search-results table');
  assert.ok(await page.isVisible(`#search-results >> text=${E.WB_SOURCE}`));
});

await step('Ethereum in search: a 0x hash and a 0x address show balances per asset, movements and the screening', async () => {
  const eth = JSON.parse(E.WB_ETH);
  // Exact decimal of base units (BigInt), as the page must show them.
  const units = (a, d) => { const v = BigInt(a); const b = 10n ** BigInt(d); const f = (v % b).toString().padStart(d, '0').replace(/0+$/, ''); return `${v / b}${f ? '.' + f : ''}`; };
  await page.fill('#search-q', eth.tx);
  await page.press('#search-q', 'Enter');
  await page.waitForSelector('#evm-tx, #search-results .error', { timeout: 15000 });
  const tx = await page.textContent('#search-results');
  assert.ok(await page.isVisible('#evm-tx'), tx);
  assert.ok(tx.includes(String(eth.block)) && tx.includes(eth.status));
  assert.equal(await page.locator('#evm-tx tbody tr').count(), 3 + eth.movements, 'the facts and one row per movement');
  assert.ok(tx.includes(`${units(eth.weth_amount, 18)} WETH`), 'the WETH transfer, exact');
  // The receiver, typed in lower case: the EIP-55 form, balances per asset, the screening.
  await page.fill('#search-q', eth.subject_lower);
  await page.press('#search-q', 'Enter');
  await page.waitForSelector('#evm-address, #search-results .error', { timeout: 15000 });
  const a = await page.textContent('#search-results');
  assert.ok(await page.isVisible('#evm-address'), a);
  assert.ok(a.includes(eth.subject), 'EIP-55 address shown');
  for (const b of eth.balances) {
    if (b.token === null) assert.ok(a.includes(units(b.balance, 18)), `ETH balance ${b.balance}`);
  }
  const weth = eth.balances.find((b) => b.token && b.token.toLowerCase() === '0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2');
  assert.ok(weth, 'a WETH balance row in the API answer');
  const row = page.locator('#evm-address table').nth(1).locator('tr', { hasText: 'WETH' });
  assert.ok((await row.textContent()).includes(units(weth.balance, 18)), 'WETH balance, exact');
  // Received WETH from an address labelled sanctions: the screening says so.
  const level = (await page.textContent('#evm-address #risk-level')).trim();
  assert.notEqual(level, 'none');
  assert.match(await page.textContent('#evm-address .evm-screening'), /sanctions/);
  // The screening page gives the same answer.
  await page.goto(`${E.WB_URL}/#/screen?s=${eth.subject}`);
  await page.waitForSelector('#risk-level', { timeout: 15000 });
  assert.equal((await page.textContent('#risk-level')).trim(), level);
  // The flow graph is Bitcoin's: a 0x subject gets a readable message, not a blank page.
  await page.goto(`${E.WB_URL}/#/graph?add=${eth.subject}`);
  await page.waitForSelector('#graph-msg .error', { timeout: 15000 });
  assert.match(await page.textContent('#graph-msg .error'), /Ethereum .*search it/);
});

await step('screen a deposit', async () => {
  await page.goto(`${E.WB_URL}/#/screen?s=${E.WB_DEPOSIT}`);
  await page.waitForSelector('#risk-level', { timeout: 15000 });
  assert.equal((await page.textContent('#risk-level')).trim(), 'severe');
  assert.ok(await page.isVisible('text=Rules that fired'));
});

await step('bad input gets a readable message in the page', async () => {
  await page.goto(`${E.WB_URL}/#/screen?s=nonsense`);
  await page.waitForSelector('#screen-result .error');
  assert.match(await page.textContent('#screen-result .error'), /address|invalid/i);
  await page.goto(`${E.WB_URL}/#/search?q=${'ab'.repeat(32)}`);
  await page.waitForSelector('#no-match');
});

await step('alerts page lists the log and the live stream connects', async () => {
  await page.goto(`${E.WB_URL}/#/alerts`);
  await page.waitForSelector('#alerts-list');
  await page.waitForFunction(() => /live: live/.test(document.querySelector('#stream-state').textContent), null, { timeout: 10000 });
  assert.equal(await page.locator('.alert-row').count(), 0, 'no alert before the label import');
});

await step('a real alert arrives live (sanctions label on the mule) and is acknowledged from the page', async () => {
  // The page must not reload to show it: this mark would be gone.
  await page.evaluate(() => { window.__sameDocument = true; });
  // A colleague imports a sanctions label on the mule's address while the service runs; the
  // flagged-receive rule fires on what it received, the alert store's stamp moves, and the
  // service's SSE stream carries the alert to the open page.
  execFileSync(E.WB_BIN, ['--data-dir', E.WB_DATA, '--quiet', 'labels', 'add', expect.mule, 'OFAC SDN: mule of the heist',
    '--category', 'sanctions', '--source', 'ofac-test'], { stdio: 'pipe' });
  const t0 = Date.now();
  await page.waitForSelector('.alert-row', { timeout: 15000 });
  console.log(`     alert shown ${Date.now() - t0} ms after the label import`);
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'shown without a reload');
  const row = page.locator('.alert-row').first();
  assert.match(await row.textContent(), /sanctioned-receiver/);
  assert.equal((await page.textContent('#alert-count')).trim(), String(await page.locator('.alert-row').count()));
  await page.screenshot({ path: path.join(shots, 'alert-arrived-live.png') });
  const id = await row.locator('.ack-box').getAttribute('value');
  await row.locator('.ack-box').check();
  await page.click('#ack');
  await page.waitForSelector('#view .ok');
  // The API (another client) sees it acknowledged; the page's list no longer shows it.
  const r = await fetch(`${E.WB_URL}/v1/alerts?all=true&limit=1000`, { headers: { 'X-API-Key': E.WB_KEY } }).then((x) => x.json());
  const a = r.alerts.find((x) => x.id === id);
  assert.ok(a, `alert ${id} in the API's log`);
  assert.equal(a.acked, true);
  assert.equal(a.rule_id, 'sanctioned-receiver');
  assert.ok(!(await page.locator(`.ack-box[value="${id}"]`).count()), 'acknowledged alert left the unacknowledged list');
});

await step('no console errors and nothing fetched from elsewhere', async () => {
  // 4xx answers the page handled still log a line in Chromium's console: ignore those.
  const real = consoleErrors.filter((m) => !/Failed to load resource/.test(m));
  assert.deepEqual(real, []);
  assert.deepEqual(foreign, []);
});

await ctx.close();
fs.rmSync(profile, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
