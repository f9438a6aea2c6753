// Alert history (#/history; guards, supervisors, police liaisons, admins):
// every alert, open or closed, newest first, a page at a time
// (GET /api/v1/alerts?order=desc&before=SEQ; the answer's "next" is the
// seq of the next older page, 0 when there is none), filtered by site,
// camera or gate, kind, colour, state, who handled it and time range.
// A row opens the alert's detail; its playback link opens the recording
// of the alert's cameras at its moment. Data is set as text only.
import { t, tEnum, applyI18n, onLangChange } from './i18n.js';
import { storedNumber, siteRoots } from './common.js';
import { api } from './api.js';
import { local, fromInput } from './localtime.js';
import { el, td, injectCSS } from './shared/dom.js';
import { cause, summary } from './describe.js';
import en from './i18n/en.js';

const PAGE_SIZE = storedNumber('vigil.history.page', 50);
const SEVERITIES = ['red', 'yellow', 'green'];
const STATES = ['open', 'raised', 'acknowledged', 'dispatched', 'resolved'];
// The kinds the dictionaries name (kind.motion_armed is a way of saying motion).
const KINDS = Object.keys(en).filter((k) => k.startsWith('kind.') && k !== 'kind.motion_armed').map((k) => k.slice(5));

const PAGE = `
<h2 data-i18n="hist.title"></h2>
<form class="panel hi-filter" data-testid="hist-filter">
  <label><span data-i18n="hist.site"></span><select name="site" data-testid="hist-site"><option value="" data-i18n="hist.any"></option></select></label>
  <label><span data-i18n="hist.device"></span><select name="device" data-testid="hist-device"><option value="" data-i18n="hist.any"></option></select></label>
  <label><span data-i18n="hist.kind"></span><select name="kind" data-testid="hist-kind"><option value="" data-i18n="hist.any"></option></select></label>
  <label><span data-i18n="hist.colour"></span><select name="severity" data-testid="hist-colour"><option value="" data-i18n="hist.any"></option></select></label>
  <label><span data-i18n="hist.state"></span><select name="state" data-testid="hist-state"><option value="" data-i18n="hist.any"></option></select></label>
  <label><span data-i18n="hist.handled_by"></span><input name="handled_by" data-testid="hist-handled-by" maxlength="128"></label>
  <label><span data-i18n="hist.from"></span><input name="from" type="datetime-local" step="1" data-testid="hist-from"></label>
  <label><span data-i18n="hist.to"></span><input name="to" type="datetime-local" step="1" data-testid="hist-to"></label>
  <button type="submit" data-testid="hist-apply" data-i18n="hist.apply"></button>
  <p class="muted" data-i18n="evidence.tz_note"></p>
</form>
<p class="error" role="alert" data-testid="hist-error" hidden></p>
<table class="hi-table">
  <thead><tr>
    <th data-i18n="hist.col.time"></th><th data-i18n="hist.col.colour"></th><th data-i18n="hist.col.kind"></th>
    <th data-i18n="hist.col.place"></th><th data-i18n="hist.col.summary"></th><th data-i18n="hist.col.state"></th>
    <th data-i18n="hist.col.handled_by"></th><th data-i18n="hist.col.playback"></th>
  </tr></thead>
  <tbody data-testid="hist-rows"></tbody>
</table>
<p class="empty" data-testid="hist-empty" data-i18n="hist.empty" hidden></p>
<p class="hi-pager">
  <button type="button" class="ghost" data-testid="hist-newer" data-i18n="hist.newer"></button>
  <span class="muted" data-testid="hist-page"></span>
  <button type="button" class="ghost" data-testid="hist-older" data-i18n="hist.older"></button>
</p>`;

// handlers are the people who moved an alert along its workflow (not
// the edge that raised it nor central's own escalation).
export function handlers(a) {
  return [...new Set((a.history ?? []).map((s) => s.actor).filter((x) => x && x !== 'system' && !x.startsWith('edge:')))];
}

export function mount(root, { placeOf, nameOf, playbackHash } = {}) {
  injectCSS(new URL('./history.css', import.meta.url));
  const gen = String(Number(root.dataset.gen || 0) + 1); // a newer mount (another user) retires this one
  root.dataset.gen = gen;
  const live = () => root.dataset.gen === gen;
  root.innerHTML = PAGE;
  root.classList.add('history');
  const q = (sel) => root.querySelector(sel);
  const form = q('.hi-filter');
  form.elements.severity.append(...SEVERITIES.map((s) => el('option', { value: s, text: tEnum('sev', s) })));
  form.elements.state.append(...STATES.map((s) => el('option', { value: s, text: s === 'open' ? t('hist.open') : tEnum('state', s) })));
  form.elements.kind.append(...KINDS.map((k) => el('option', { value: k, text: tEnum('kind', k) })));
  applyI18n(root);
  const rowsEl = q('[data-testid="hist-rows"]');
  const errEl = q('[data-testid="hist-error"]');
  let alerts = [];
  let next = 0;
  let stack = []; // the before= of each newer page shown (0: the newest)
  let before = 0;

  async function loadChoices() {
    try {
      const [sites, edges] = await Promise.all([api('/api/v1/sites'), api('/api/v1/edges')]);
      const siteSel = form.elements.site;
      const walk = (n, path) => {
        const p = [...path, n.name || n.id];
        siteSel.append(el('option', { value: n.id, text: p.join(' › ') }));
        for (const g of n.gates ?? []) form.elements.device.append(el('option', { value: `gate:${g.id}`, text: `${t('sites.gate')} ${g.name || g.id}` }));
        for (const c of n.children ?? []) walk(c, p);
      };
      for (const n of siteRoots(sites)) walk(n, []);
      for (const e of edges.edges ?? []) {
        for (const c of e.cameras ?? []) form.elements.device.append(el('option', { value: `camera:${c.id}`, text: `${t('sites.camera')} ${c.name || c.id}` }));
      }
    } catch (e) { showError(e); }
  }

  function params() {
    const p = new URLSearchParams({ order: 'desc', limit: String(PAGE_SIZE) });
    for (const k of ['site', 'kind', 'severity', 'state']) if (form.elements[k].value) p.set(k, form.elements[k].value);
    const dev = form.elements.device.value;
    if (dev) p.set(dev.slice(0, dev.indexOf(':')), dev.slice(dev.indexOf(':') + 1));
    const who = form.elements.handled_by.value.trim();
    if (who) p.set('handled_by', who);
    const from = fromInput(form.elements.from.value);
    const to = fromInput(form.elements.to.value);
    if (from) p.set('from', from.toISOString());
    if (to) p.set('to', to.toISOString());
    if (before) p.set('before', String(before));
    return p;
  }

  function showError(e) {
    errEl.hidden = !e;
    if (e) errEl.textContent = t('error.generic', { message: e.message || String(e) });
  }

  async function load() {
    showError(null);
    try {
      const res = await api(`/api/v1/alerts?${params()}`);
      if (!live()) return;
      alerts = res.alerts ?? [];
      next = res.next || 0;
      render();
    } catch (e) { showError(e); }
  }

  function row(a) {
    const sev = SEVERITIES.includes(a.severity) ? a.severity : 'unknown';
    const tr = el('tr', { 'data-testid': 'hist-row', class: `sev-${sev}`, tabindex: '0',
      dataset: { alertId: a.id, seq: String(a.seq ?? ''), severity: sev, state: a.state || '', kind: a.kind || '', time: a.time || '' } });
    const time = td(local(a.time));
    time.title = t('time.utc', { time: a.time });
    const link = el('a', { href: playbackHash ? playbackHash(a) : '#/playback', 'data-testid': 'hist-playback', text: t('hist.playback') });
    link.addEventListener('click', (ev) => {
      ev.stopPropagation();
      window.vigilPlaybackClickAt = performance.now();
    });
    const name = nameOf ? nameOf(a) : a.source;
    tr.append(time, td(tEnum('sev', sev), 'hi-sev'), td(cause(a)), td(placeOf ? placeOf(a) : a.site_id),
      td(summary(a, name)), td(tEnum('state', a.state || 'raised')), td(handlers(a).join(', ')), el('td', {}, link));
    const open = () => { location.hash = `#/alert/${encodeURIComponent(a.id)}`; };
    tr.addEventListener('click', open);
    tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') open(); });
    return tr;
  }

  function render() {
    rowsEl.replaceChildren(...alerts.map(row));
    rowsEl.dataset.renders = String(Number(rowsEl.dataset.renders || 0) + 1); // tests wait for the next one
    q('[data-testid="hist-empty"]').hidden = alerts.length > 0;
    q('[data-testid="hist-older"]').disabled = !next;
    q('[data-testid="hist-newer"]').disabled = stack.length === 0;
    q('[data-testid="hist-page"]').textContent = t('hist.page', { page: stack.length + 1 });
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    stack = [];
    before = 0;
    load();
  });
  q('[data-testid="hist-older"]').addEventListener('click', () => {
    if (!next) return;
    stack.push(before);
    before = next;
    load();
  });
  q('[data-testid="hist-newer"]').addEventListener('click', () => {
    if (!stack.length) return;
    before = stack.pop();
    load();
  });
  window.addEventListener('hashchange', () => { if (location.hash === '#/history' && live()) load(); });
  onLangChange(() => { if (live()) render(); });
  loadChoices();
  load();
}

