// Safety sensors (#/sensors; every signed-in role): per site, each
// sensor's current value coloured by its state (normal green, warning
// yellow 预警, alarm red 报警, silent grey-yellow 无数据) with its unit,
// location and a sparkline of the last hour (GET /api/v1/sensors, again
// every REFRESH_MS). A card opens the sensor's chart over 24 h, 7 days
// or 30 days (GET /api/v1/sensors/{edge}/{sensor}/history) with its
// warning and alarm thresholds drawn; #/sensors?sensor=EDGE/SENSOR (the
// site map's link) opens that sensor's chart. A silent sensor (no fresh
// reading) says since when it has not reported.
//
// The charts, and a sensor alert's reading and chart in the alert
// detail, are sensorchart.js's (uPlot, shared with the queue's cards and
// the pop-up).
import { t, tEnum, applyI18n, onLangChange } from './i18n.js';
import { api } from './api.js';
import { local } from './localtime.js';
import { el, injectCSS } from './shared/dom.js';
import { drawChart, fmtValue, num, silentSince, DETECTORS } from './sensorchart.js';

const REFRESH_MS = 5000;
const CHART_REFRESH_TICKS = 6; // the open chart is fetched again every 6th refresh
const RANGES = [['24h', 24 * 3600e3], ['7d', 7 * 86400e3], ['30d', 30 * 86400e3]];
const STATES = ['alarm', 'warning', 'silent', 'unknown', 'normal']; // most urgent first

function stateOf(s) { return STATES.includes(s.state) ? s.state : 'unknown'; }
function keyOf(s) { return `${s.edge}/${s.id}`; }

// ---------- the page ----------

const PAGE = `
<h2 data-i18n="sensors.title"></h2>
<p class="muted" data-i18n="sensors.hint"></p>
<p class="error" role="alert" data-testid="sensors-error" hidden></p>
<p class="empty" data-testid="sensors-empty" data-i18n="sensors.empty" hidden></p>
<div class="sn-sites" data-testid="sensors-sites"></div>
<div class="panel sn-chart" data-testid="sensor-chart-panel" hidden>
  <div class="sn-chart-head">
    <h3 data-testid="sensor-chart-title"></h3>
    <span class="sn-ranges" role="group" data-i18n-aria="sensors.range">
      <button type="button" class="ghost" data-range="24h" data-testid="sensor-range-24h" data-i18n="sensors.range_24h"></button>
      <button type="button" class="ghost" data-range="7d" data-testid="sensor-range-7d" data-i18n="sensors.range_7d"></button>
      <button type="button" class="ghost" data-range="30d" data-testid="sensor-range-30d" data-i18n="sensors.range_30d"></button>
    </span>
    <button type="button" class="ghost sn-close" data-testid="sensor-chart-close" data-i18n="sensors.close"></button>
  </div>
  <div class="sn-plot" data-testid="sensor-chart"></div>
  <p class="muted" data-testid="sensor-chart-note"></p>
</div>`;

export function mount(root, { place } = {}) {
  injectCSS(new URL('./sensors.css', import.meta.url));
  const gen = String(Number(root.dataset.gen || 0) + 1); // a newer mount (another user) retires this one
  root.dataset.gen = gen;
  const live = () => root.dataset.gen === gen && root.isConnected;
  root.innerHTML = PAGE;
  root.classList.add('sensors');
  applyI18n(root);
  const q = (sel) => root.querySelector(sel);
  const sitesEl = q('[data-testid="sensors-sites"]');
  const errEl = q('[data-testid="sensors-error"]');
  const panel = q('[data-testid="sensor-chart-panel"]');
  const cards = new Map(); // EDGE/SENSOR → {card, refs}
  let list = [];
  let open = null; // {sensor, range}
  let ticks = 0;

  function siteName(id) {
    const entry = place ? place(id) : null;
    return entry ? entry.path.slice(1).join(' › ') || entry.node.name || id : id || t('sensors.no_site');
  }

  // wanted is the sensor the address names (#/sensors?sensor=EDGE/SENSOR,
  // the site map's link): its chart opens once the list has it.
  let wanted = null;
  function readHash() {
    const [page, query] = location.hash.slice(2).split('?');
    if (page !== 'sensors') return;
    wanted = new URLSearchParams(query ?? '').get('sensor');
    if (wanted) openWanted();
  }
  function openWanted() {
    const s = list.find((x) => keyOf(x) === wanted);
    if (!s) return;
    wanted = null;
    openChart(s, '24h');
    panel.scrollIntoView({ block: 'nearest' });
  }

  async function load() {
    try {
      list = (await api('/api/v1/sensors'))?.sensors ?? [];
      errEl.hidden = true;
    } catch (e) {
      errEl.textContent = t('error.generic', { message: e.message });
      errEl.hidden = false;
    }
    if (!live()) return;
    render();
    if (wanted) openWanted();
    if (open && ++ticks % CHART_REFRESH_TICKS === 0) openChart(list.find((s) => keyOf(s) === keyOf(open.sensor)) ?? open.sensor, open.range);
  }

  function render() {
    q('[data-testid="sensors-empty"]').hidden = list.length > 0;
    const bySite = bySiteUrgentFirst(list);
    const sections = [...bySite.keys()].sort().map((site) => {
      let sec = sitesEl.querySelector(`section[data-site="${CSS.escape(site)}"]`);
      if (!sec) {
        sec = el('section', { class: 'sn-site', 'data-testid': 'sensor-site', dataset: { site } },
          el('h3', {}), el('div', { class: 'sn-grid' }));
      }
      sec.querySelector('h3').textContent = siteName(site);
      sec.querySelector('.sn-grid').replaceChildren(...bySite.get(site).map(cardFor));
      return sec;
    });
    sitesEl.replaceChildren(...sections);
    for (const k of [...cards.keys()]) if (!list.some((s) => keyOf(s) === k)) cards.delete(k);
  }

  function cardFor(s) {
    const k = keyOf(s);
    let c = cards.get(k);
    if (!c) {
      c = newCard(() => openChart(cards.get(k).s, open && keyOf(open.sensor) === k ? open.range : '24h'));
      cards.set(k, c);
    }
    fillCard(c, s);
    return c.card;
  }

  function openChart(s, range) {
    open = { sensor: s, range };
    return showChart(panel, s, range, () => live() && open?.sensor === s && open.range === range);
  }

  for (const b of panel.querySelectorAll('[data-range]')) {
    b.addEventListener('click', () => { if (open) openChart(open.sensor, b.dataset.range); });
  }
  q('[data-testid="sensor-chart-close"]').addEventListener('click', () => {
    open = null;
    panel.hidden = true;
  });
  onLangChange(() => { if (live()) { applyI18n(root); render(); if (open) openChart(open.sensor, open.range); } });
  window.addEventListener('hashchange', () => { if (live()) readHash(); });
  readHash();
  load();
  const timer = setInterval(() => {
    if (!live()) { clearInterval(timer); return; }
    if (!root.hidden) load();
  }, REFRESH_MS);
}

// bySiteUrgentFirst groups sensors by site, the most urgent state first
// and then by name.
function bySiteUrgentFirst(list) {
  const bySite = new Map();
  for (const s of list) {
    const site = s.site_id || '';
    if (!bySite.has(site)) bySite.set(site, []);
    bySite.get(site).push(s);
  }
  for (const l of bySite.values()) {
    l.sort((a, b) => STATES.indexOf(stateOf(a)) - STATES.indexOf(stateOf(b)) || String(a.name || a.id).localeCompare(String(b.name || b.id)));
  }
  return bySite;
}

// showChart fetches sensor s's history over range and draws it in the
// chart panel; current says whether the answer is still wanted.
async function showChart(panel, s, range, current) {
  const q = (sel) => panel.querySelector(sel);
  panel.hidden = false;
  panel.dataset.sensor = s.id;
  panel.dataset.edge = s.edge;
  panel.dataset.range = range;
  q('[data-testid="sensor-chart-title"]').textContent = [s.name || s.id, s.location].filter(Boolean).join(' · ');
  for (const b of panel.querySelectorAll('[data-range]')) b.setAttribute('aria-pressed', String(b.dataset.range === range));
  const span = RANGES.find(([r]) => r === range)[1];
  const to = new Date();
  const from = new Date(to.getTime() - span);
  const note = q('[data-testid="sensor-chart-note"]');
  const box = q('[data-testid="sensor-chart"]');
  try {
    const h = await api(`/api/v1/sensors/${encodeURIComponent(s.edge)}/${encodeURIComponent(s.id)}/history?from=${from.toISOString()}&to=${to.toISOString()}`);
    if (!current()) return;
    const points = h?.points ?? [];
    await drawChart(box, `history:${keyOf(s)}`, points, { warn: s.warn, alarm: s.alarm, unit: h?.unit || s.unit, step: h?.step || 'raw' });
    panel.dataset.step = h?.step || 'raw';
    note.textContent = points.length ? t('sensors.chart_note', { count: points.length, step: tEnum('sensors.step', h?.step || 'raw'), from: local(from.toISOString()), to: local(to.toISOString()) })
      : t('sensors.no_history');
  } catch (e) {
    note.textContent = t('error.generic', { message: e.message });
  }
}

// newCard makes a sensor's card; pick opens its chart.
function newCard(pick) {
  const refs = {
    name: el('span', { class: 'sn-name' }), state: el('span', { class: 'sn-state', 'data-testid': 'sensor-state' }),
    value: el('strong', { class: 'sn-value', 'data-testid': 'sensor-value' }), where: el('span', { class: 'sn-where' }),
    spark: el('div', { class: 'sn-spark', 'data-testid': 'sensor-spark' }), time: el('time', { class: 'sn-time' }),
    limits: el('span', { class: 'sn-limits' }),
    silent: el('span', { class: 'sn-silent', 'data-testid': 'sensor-silent-since', hidden: true }),
    offline: el('span', { class: 'sn-offline', 'data-testid': 'sensor-edge-offline', hidden: true }),
  };
  const card = el('div', { role: 'button', tabindex: '0', class: 'sn-card', 'data-testid': 'sensor-card' },
    el('span', { class: 'sn-top' }, refs.name, refs.state), refs.value, refs.silent, refs.offline, refs.where, refs.spark,
    el('span', { class: 'sn-foot' }, refs.limits, refs.time));
  card.addEventListener('click', pick);
  card.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); pick(); } });
  return { card, refs };
}

// fillCard shows sensor s on card c: value, state colour, sparkline.
function fillCard(c, s) {
  c.s = s;
  const st = stateOf(s);
  const { card, refs } = c;
  card.className = `sn-card st-${st}${s.edge_online === false ? ' edge-off' : ''}`;
  Object.assign(card.dataset, { sensor: s.id, edge: s.edge, kind: s.kind, state: st, value: String(s.value ?? '') });
  refs.name.textContent = s.name || s.id;
  refs.state.textContent = tEnum('sensors.state', st);
  refs.value.textContent = st === 'unknown' ? '—' : fmtValue(s.kind, s.value, s.unit);
  // Silent: the last value is stale; say since when it has not reported.
  refs.silent.hidden = st !== 'silent';
  refs.silent.textContent = st === 'silent' ? silentSince(s.time) : '';
  card.dataset.lastReport = s.time || '';
  // Its edge is not connected: the state is the last one heard, not now.
  refs.offline.hidden = s.edge_online !== false;
  refs.offline.textContent = s.edge_online === false ? t('sensors.edge_offline', { edge: s.edge }) : '';
  card.dataset.edgeOnline = String(s.edge_online !== false);
  refs.where.textContent = [s.location, tEnum('sensors.kind', s.kind)].filter(Boolean).join(' · ');
  refs.limits.textContent = limitsLine(s);
  refs.time.textContent = s.time ? local(s.time).slice(11) : ''; // hh:mm:ss; the date in its title
  refs.time.title = s.time ? local(s.time) : '';
  if (s.time) refs.time.dateTime = s.time;
  drawChart(refs.spark, `spark:${keyOf(s)}`, s.spark ?? [], { warn: s.warn, alarm: s.alarm, unit: s.unit, small: true }).catch(() => {});
}

// limitsLine says a sensor's thresholds ("warn 60 · alarm 80 °C").
function limitsLine(s) {
  if (DETECTORS.includes(s.kind)) return '';
  const w = num(s.warn);
  const a = num(s.alarm);
  const parts = [];
  if (Number.isFinite(w)) parts.push(t('sensors.warn_at', { value: fmtValue(s.kind, w, '') }));
  if (Number.isFinite(a)) parts.push(t('sensors.alarm_at', { value: fmtValue(s.kind, a, '') }));
  return parts.length ? `${parts.join(' · ')} ${s.unit ?? ''}`.trim() : '';
}
