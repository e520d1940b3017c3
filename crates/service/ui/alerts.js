// Alerts: the log (GET /v1/alerts), acknowledged from the page (POST /v1/alerts/ack), and
// kept live by the SSE stream (/v1/alerts/stream) for as long as the page is open.

import { api, stream, errorBox } from './api.js';
import { el, table } from './util.js';

const seen = new Map(); // alert id -> alert, newest last
let listeners = new Set();
let started = false;
let state = 'connecting';

export function startAlerts() {
  if (started) return;
  started = true;
  const ctl = new AbortController();
  stream('/v1/alerts/stream', (ev) => {
    if (ev.event !== 'alert') return;
    let a;
    try { a = JSON.parse(ev.data); } catch { return; }
    seen.set(a.id, a);
    badge();
    for (const f of listeners) f(a);
  }, ctl.signal, (s) => { state = s; for (const f of listeners) f(null); });
}

function badge() {
  const n = [...seen.values()].filter((a) => !a.acked).length;
  const b = document.getElementById('alert-count');
  b.textContent = String(n);
  b.hidden = n === 0;
}

export async function alertsView(view) {
  const msg = el('div');
  const body = el('div', { id: 'alerts-list' });
  let all = false;
  const status = el('span', { class: 'muted', id: 'stream-state' });
  const draw = () => {
    status.textContent = `live: ${state}`;
    const rows = [...seen.values()].filter((a) => all || !a.acked).sort((a, b) => b.seq - a.seq);
    if (!rows.length) {
      body.replaceChildren(el('p', { class: 'muted' }, all ? 'no alerts yet' : 'no unacknowledged alerts'));
      return;
    }
    body.replaceChildren(table(['', 'seq', 'height', 'rule', 'kind', 'summary', 'tx', 'acked'], rows.map((a) => [
      a.acked ? '' : el('input', { type: 'checkbox', class: 'ack-box', value: a.id, 'aria-label': 'select alert ' + a.seq }),
      String(a.seq), String(a.height), a.rule_id, a.kind, a.summary + (a.orphaned ? ' (orphaned by a reorganisation)' : ''),
      el('a', { href: `#/graph?add=${a.txid}`, class: 'mono' }, a.txid.slice(0, 12) + '…'), a.acked ? 'yes' : 'no'])));
    for (const tr of body.querySelectorAll('tbody tr')) tr.classList.add('alert-row');
  };
  const load = async () => {
    const r = await api(`/v1/alerts?limit=1000${all ? '&all=true' : ''}`);
    for (const a of r.alerts) seen.set(a.id, a);
    badge();
    draw();
  };
  view.append(el('h1', {}, 'Alerts'),
    el('div', { class: 'controls' },
      el('button', { id: 'ack', onclick: async () => {
        const ids = [...body.querySelectorAll('.ack-box:checked')].map((b) => b.value);
        if (!ids.length) { msg.replaceChildren(el('div', { class: 'note' }, 'select the alerts to acknowledge first')); return; }
        try {
          await api('/v1/alerts/ack', { method: 'POST', json: { ids } });
          for (const id of ids) if (seen.has(id)) seen.get(id).acked = true;
          msg.replaceChildren(el('div', { class: 'ok' }, `${ids.length} alert(s) acknowledged`));
          badge();
          draw();
        } catch (e) {
          msg.replaceChildren(errorBox(e));
        }
      } }, 'Acknowledge selected'),
      el('label', {}, el('input', { type: 'checkbox', id: 'show-all', onchange: async (ev) => { all = ev.target.checked; await load().catch((e) => msg.replaceChildren(errorBox(e))); } }), ' show acknowledged'),
      status),
    msg, body);
  const f = () => draw();
  listeners.add(f);
  await load();
  return { leave() { listeners.delete(f); } };
}
