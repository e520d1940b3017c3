// Small DOM and number helpers. Data from the API is only ever put into the page as text
// (textContent), never as HTML: labels come from outside sources and may hold anything.

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// Satoshis as BTC, exactly (integer arithmetic on the decimal string, no float rounding).
export function btc(sats) {
  if (sats === null || sats === undefined) return '?';
  const neg = sats < 0;
  const s = String(Math.abs(sats)).padStart(9, '0');
  const whole = s.slice(0, -8).replace(/^0+(?=\d)/, '');
  const frac = s.slice(-8);
  return (neg ? '-' : '') + whole + '.' + frac;
}

// Shorter, for graph labels: trailing zeros dropped.
export function btcShort(sats) {
  return btc(sats).replace(/\.?0+$/, '') + ' BTC';
}

export function pct(share) {
  return (share * 100).toFixed(share < 0.01 ? 3 : 1) + '%';
}

export function short(id, n = 8) {
  if (!id) return '';
  return id.length > 2 * n + 1 ? id.slice(0, n) + '…' + id.slice(-n) : id;
}

export function table(headers, rows) {
  return el('table', {},
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', {}, h)))),
    el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c) => el('td', {}, c))))));
}

export function link(href, text) {
  return el('a', { href }, text);
}

export function download(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export const TXID = /^[0-9a-fA-F]{64}$/;
export const OUTPOINT = /^([0-9a-fA-F]{64}):(\d+)$/;
