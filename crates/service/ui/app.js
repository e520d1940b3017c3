// The workbench's shell: a hash router over the pages (cases, case, graph, screening,
// alerts, search), the search box, the live alert badge and the index tip in the header.

import { api, errorBox } from './api.js';
import { el } from './util.js';
import { caseList, caseView } from './case.js';
import { graphView } from './graph.js';
import { screenView } from './screen.js';
import { alertsView, startAlerts } from './alerts.js';
import { searchView } from './search.js';

const view = document.getElementById('view');

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function params() {
  const h = location.hash.replace(/^#/, '') || '/cases';
  const [path, qs] = h.split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), q: new URLSearchParams(qs || '') };
}

let current = null;

async function route() {
  const { parts, q } = params();
  const page = parts[0] || 'cases';
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.nav === page || (page === 'case' && a.dataset.nav === 'cases'));
  // The graph keeps its state across pages: it is detached, not destroyed.
  if (current && current.leave) current.leave();
  view.replaceChildren();
  try {
    switch (page) {
      case 'cases': current = await caseList(view); break;
      case 'case': current = await caseView(view, parts[1], q); break;
      case 'graph': current = await graphView(view, q); break;
      case 'screen': current = await screenView(view, q.get('s') || ''); break;
      case 'alerts': current = await alertsView(view); break;
      case 'search': current = await searchView(view, q.get('q') || ''); break;
      default: view.replaceChildren(el('p', {}, `No page '${page}'. `, el('a', { href: '#/cases' }, 'Back to the cases'))); current = null;
    }
  } catch (e) {
    view.append(errorBox(e));
    current = null;
  }
  document.body.dataset.page = page;
}

async function tip() {
  try {
    const h = await fetch('/health').then((r) => r.json());
    document.getElementById('tip').textContent = `${h.network} · tip ${h.index_tip_height ?? '–'}`;
  } catch {
    document.getElementById('tip').textContent = 'service unreachable';
  }
}

window.addEventListener('error', (ev) => view.prepend(errorBox(ev.error || ev.message)));
window.addEventListener('unhandledrejection', (ev) => view.prepend(errorBox(ev.reason)));

document.getElementById('search').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const q = document.getElementById('search-q').value.trim();
  if (q) go('#/search?q=' + encodeURIComponent(q));
});

window.addEventListener('hashchange', route);
tip();
setInterval(tip, 15000);
route().then(() => startAlerts());
