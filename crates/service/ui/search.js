// One box for an address, a txid, an output, an entity id, a label or a case name: each
// kind is asked of the endpoint that knows it, and every match links onward.

import { api, ApiError, errorBox } from './api.js';
import { el, btc, link, table, TXID, OUTPOINT } from './util.js';
import { EVM_ADDRESS, EVM_HASH, evmAddressCard, evmTxCard } from './evm.js';

export async function searchView(view, q) {
  view.append(el('h1', {}, `Search: ${q}`));
  const out = el('div', { id: 'search-results' });
  view.append(out);
  const found = [];
  const tries = [];
  const om = q.match(OUTPOINT);
  // A 0x address or hash: the service's Ethereum index answers (balances per asset,
  // movements, screening); labels of it are still searched below.
  let evm = null;
  const evmCard = EVM_ADDRESS.test(q) ? evmAddressCard : EVM_HASH.test(q) ? evmTxCard : null;
  if (evmCard) {
    tries.push(evmCard(q).then((c) => { evm = c; }, (e) => { evm = errorBox(e); }));
  } else if (om) {
    found.push(['output', el('span', { class: 'mono' }, q), [link(`#/screen?s=${q}`, 'screen the deposit'), ' ', link(`#/graph?add=${om[1]}`, 'graph')]]);
  } else if (TXID.test(q)) {
    tries.push(api(`/v1/transactions/${q}`).then((v) => found.push(['transaction', el('span', { class: 'mono' }, v.transaction.txid), [`height ${v.transaction.block_height} · `, link(`#/graph?add=${q}`, 'graph'), ' ', link(`#/screen?s=${q}`, 'screen')]])));
  } else {
    if (/^\d{1,10}$/.test(q)) {
      tries.push(api(`/v1/entities/${q}?limit=0`).then((e) => found.push(['entity', `entity ${e.entity}`, `${e.summary.size} address(es), ${e.attributions.map((a) => a.name).join(', ') || 'unlabelled'}`])));
    }
    tries.push(api(`/v1/addresses/${encodeURIComponent(q)}?limit=0`).then((v) => found.push(['address', el('span', { class: 'mono' }, v.address.address),
      [`balance ${btc(v.address.balance)} BTC · ${v.attributions.map((a) => a.name).join(', ') || 'unlabelled'} · `, link(`#/graph?add=${encodeURIComponent(q)}`, 'graph'), ' ', link(`#/screen?s=${encodeURIComponent(q)}`, 'screen')]])));
  }
  tries.push(api('/v1/cases').then((r) => {
    for (const c of r.cases) if (c.name.toLowerCase().includes(q.toLowerCase())) found.push(['case', link(`#/case/${encodeURIComponent(c.name)}`, c.name), c.description || '']);
  }));
  if (q.length >= 2) {
    tries.push(api(`/v1/labels?q=${encodeURIComponent(q)}&limit=50`).then((r) => {
      for (const l of r.labels) {
        const a = (l.target && (l.target.Address || l.target.Tx)) || '';
        found.push(['label', `${l.label} [${l.category || l.abuse || ''}] · ${l.source}`, [el('span', { class: 'mono' }, a), ' ', a ? link(`#/graph?add=${encodeURIComponent(a)}`, 'graph') : '']]);
      }
    }));
  }
  const results = await Promise.allSettled(tries);
  // "not found" and "not an address" answers just mean "not this kind"; others are shown.
  const errs = results.filter((r) => r.status === 'rejected' && !(r.reason instanceof ApiError && [400, 404].includes(r.reason.status)));
  if (evm) out.append(evm);
  if (found.length) out.append(table(['kind', 'match', ''], found));
  else if (!evm) out.append(el('p', { class: 'note', id: 'no-match' }, `Nothing matches '${q}': not a txid, output, address of this index's network, entity id, case or label. Addresses must be of the index's network; a txid is 64 hex digits.`));
  for (const e of errs) out.append(errorBox(e.reason));
  return null;
}
