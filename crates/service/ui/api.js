// The only data source: the same /v1 API that users script against. The key is asked once
// and kept in sessionStorage (gone when the browser session ends); with `serve --ui-open` a
// local investigator needs none and is never asked.

import { el } from './util.js';

const KEY = 'cointrail.key';

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.kind = body && body.error;
    this.field = body && body.field;
  }
}

let asking = null;

// Shows the key dialog; resolves when the user gave a key.
export function askKey(why) {
  if (asking) return asking;
  const dlg = document.getElementById('key-dialog');
  document.getElementById('key-why').textContent = why || '';
  const input = document.getElementById('key-input');
  input.value = '';
  asking = new Promise((resolve) => {
    const form = document.getElementById('key-form');
    const done = (ev) => {
      ev.preventDefault();
      const k = input.value.trim();
      if (!k) return;
      sessionStorage.setItem(KEY, k);
      form.removeEventListener('submit', done);
      dlg.close();
      asking = null;
      resolve(k);
    };
    form.addEventListener('submit', done);
  });
  if (!dlg.open) dlg.showModal();
  input.focus();
  return asking;
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}

function headers(extra) {
  const h = { ...(extra || {}) };
  const k = sessionStorage.getItem(KEY);
  if (k) h['X-API-Key'] = k;
  return h;
}

export async function api(path, opts = {}) {
  for (let attempt = 0; ; attempt++) {
    const h = headers(opts.json !== undefined ? { 'Content-Type': 'application/json' } : {});
    let r;
    try {
      r = await fetch(path, {
        method: opts.method || 'GET',
        headers: h,
        body: opts.json !== undefined ? JSON.stringify(opts.json) : undefined,
        signal: opts.signal,
      });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, { error: 'network', message: `the service did not answer (${e.message}); is \`cointrail serve\` still running?` });
    }
    if (r.status === 401 && attempt < 3) {
      const body = await r.json().catch(() => ({}));
      forgetKey();
      await askKey(body.message || 'This service needs an API key.');
      continue;
    }
    if (r.status === 204) return null;
    const text = await r.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = { error: 'bad_response', message: `not JSON (HTTP ${r.status}): ${text.slice(0, 200)}` };
    }
    if (!r.ok) throw new ApiError(r.status, body);
    return body;
  }
}

// Server-sent events over fetch (EventSource cannot send a key header). Reconnects with
// Last-Event-ID, so no alert is missed or repeated; stops when `signal` aborts.
export async function stream(path, onEvent, signal, onState = () => {}) {
  let last = null;
  let delay = 500;
  while (!signal.aborted) {
    try {
      const h = headers(last !== null ? { 'Last-Event-ID': String(last) } : {});
      const r = await fetch(path, { headers: h, signal });
      if (r.status === 401) {
        forgetKey();
        await askKey('The alert stream needs an API key.');
        continue;
      }
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      onState('live');
      delay = 500;
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = { event: 'message', data: '' };
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const c = line.indexOf(':');
            const k = c < 0 ? line : line.slice(0, c);
            const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
            if (k === 'id') ev.id = v;
            else if (k === 'event') ev.event = v;
            else if (k === 'data') ev.data += (ev.data ? '\n' : '') + v;
          }
          if (ev.id !== undefined) last = ev.id;
          if (ev.data) onEvent(ev);
        }
      }
    } catch (e) {
      if (signal.aborted) return;
      onState('reconnecting: ' + e.message);
    }
    await new Promise((res) => setTimeout(res, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

// A readable message for any failure, in the page (never only in the console).
export function errorBox(e) {
  const msg = e instanceof ApiError
    ? `${e.message}${e.field ? ` (field: ${e.field})` : ''}`
    : String(e && e.message ? e.message : e);
  const kind = e instanceof ApiError ? e.kind || `HTTP ${e.status}` : 'error';
  return el('div', { class: 'error', role: 'alert' }, el('strong', {}, kind + ': '), msg);
}
