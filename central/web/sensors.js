// Safety sensors (#/sensors; every signed-in role): per site, each
// sensor's current value coloured by its state (normal green, warning
// yellow 预警, alarm red 报警, silent grey-yellow 无数据) with its unit,
// location and a sparkline of the last hour (GET /api/v1/sensors, again
// every REFRESH_MS). A card opens the sensor's chart over 24 h, 7 days
// or 30 days (GET /api/v1/sensors/{edge}/{sensor}/history) with its
// warning and alarm thresholds drawn. renderSensorAlert draws a sensor
// alert's reading, rule and the minutes before it in the alert detail.
//
// Charts are uPlot (vendor/uPlot.iife.min.js, shipped with the console:
// no network). Every chart's plotted points are readable for tests and
// tools as window.vigilSensors.chartData(id): id 'spark:EDGE/SENSOR',
// 'history:EDGE/SENSOR' or 'alert:ALERT_ID'. Data is set as text only.
import { t, tEnum, applyI18n, onLangChange } from './i18n.js';
import { api } from './api.js';
import { local } from './localtime.js';
import { el, injectCSS } from './shared/dom.js';

const REFRESH_MS = 5000;
const CHART_REFRESH_TICKS = 6; // the open chart is fetched again every 6th refresh
const RANGES = [['24h', 24 * 3600e3], ['7d', 7 * 86400e3], ['30d', 30 * 86400e3]];
const STATES = ['alarm', 'warning', 'silent', 'unknown', 'normal']; // most urgent first
const DETECTORS = ['smoke', 'water_leak']; // boolean kinds: 1 is "detected"
const COLOURS = { value: '#58a6ff', band: '#58a6ff55', warn: '#f5c542', alarm: '#e5484d' };
const TZ = 'Asia/Shanghai'; // the console's times are Beijing time (localtime.js)

// ---------- chart data for tests, and the chart library ----------

const plotted = new Map(); // chart id → {x: [seconds], y: [values], warn, alarm, step}
window.vigilSensors = {
  chartData: (id) => plotted.get(id) ?? null,
  charts: () => [...plotted.keys()],
};

let uplotLoad = null;

// loadUPlot loads the vendored chart library once, as a classic script
// (its IIFE build defines window.uPlot), and its stylesheet.
export function loadUPlot() {
  injectCSS(new URL('./vendor/uPlot.min.css', import.meta.url));
  if (window.uPlot) return Promise.resolve(window.uPlot);
  uplotLoad ??= new Promise((resolve, reject) => {
    const s = el('script', { src: new URL('./vendor/uPlot.iife.min.js', import.meta.url).href });
    s.addEventListener('load', () => resolve(window.uPlot));
    s.addEventListener('error', () => { uplotLoad = null; reject(new Error('vendor/uPlot.iife.min.js')); });
    document.head.append(s);
  });
  return uplotLoad;
}

// thresholdsHook draws the warning and alarm lines across the plot
// (those inside its value range: a sparkline's range is its data's).
function thresholdsHook(lines) {
  return (u) => {
    const { ctx, bbox } = u;
    const { min, max } = u.scales.y;
    ctx.save();
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
    for (const { value, colour } of lines) {
      if (!Number.isFinite(value) || value < min || value > max) continue;
      const y = Math.round(u.valToPos(value, 'y', true));
      ctx.strokeStyle = colour;
      ctx.beginPath();
      ctx.moveTo(bbox.left, y);
      ctx.lineTo(bbox.left + bbox.width, y);
      ctx.stroke();
    }
    ctx.restore();
  };
}

// yRange keeps the thresholds in view (a chart's, not a sparkline's),
// with a little room.
function yRange(lines, small) {
  return (u, lo, hi) => {
    const vals = [lo, hi, ...(small ? [] : lines.map((l) => l.value))].filter(Number.isFinite);
    if (vals.length === 0) return [0, 1];
    const a = Math.min(...vals);
    const b = Math.max(...vals);
    const pad = (b - a) * 0.08 || Math.abs(b) * 0.1 || 1;
    return [a - pad, b + pad];
  };
}

function thresholdLines(warn, alarm) {
  return [{ value: num(warn), colour: COLOURS.warn }, { value: num(alarm), colour: COLOURS.alarm }];
}

function num(v) { return v === null || v === undefined || v === '' ? NaN : Number(v); }

// drawChart (re)draws chart id in box: points [{t, v, min, max}],
// thresholds, size. small: a sparkline without axes or legend.
async function drawChart(box, id, points, { warn, alarm, unit = '', small = false, step = 'raw' } = {}) {
  const uPlot = await loadUPlot();
  const pts = points.filter((p) => Number.isFinite(Date.parse(p.t)) && Number.isFinite(Number(p.v)))
    .map((p) => ({ x: Date.parse(p.t) / 1000, v: Number(p.v), min: p.min, max: p.max }))
    .sort((a, b) => a.x - b.x);
  const x = pts.map((p) => p.x);
  const y = pts.map((p) => p.v);
  const banded = !small && step !== 'raw' && pts.some((p) => p.min !== undefined && p.max !== undefined);
  const data = [x, y];
  if (banded) data.push(pts.map((p) => Number(p.min ?? p.v)), pts.map((p) => Number(p.max ?? p.v)));
  plotted.set(id, { x, y, warn: num(warn), alarm: num(alarm), step, unit });
  box.dataset.chart = id;
  box.dataset.points = String(x.length);
  const lines = thresholdLines(warn, alarm);
  const width = small ? 160 : Math.max(320, Math.min(box.clientWidth || 800, 1200));
  const height = small ? 40 : 280;
  if (box.uplot && box.uplot.series.length === data.length && box.uplotSmall === small) {
    box.uplot.setData(data);
    box.uplot.thresholds.splice(0, 2, ...lines);
    return;
  }
  box.uplot?.destroy();
  const series = [{}, { label: unit || t('sensors.value'), stroke: COLOURS.value, width: small ? 1.5 : 2, points: { show: !small && x.length < 60 } }];
  if (banded) series.push({ label: t('sensors.min'), stroke: COLOURS.band, width: 1 }, { label: t('sensors.max'), stroke: COLOURS.band, width: 1 });
  const opts = {
    width, height, series,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), TZ),
    scales: { x: { time: true }, y: { range: yRange(lines, small) } },
    hooks: { draw: [thresholdsHook(lines)] },
    legend: { show: !small },
    cursor: { show: !small },
    axes: small ? [{ show: false }, { show: false }]
      : [{ stroke: '#9aa4ad', grid: { stroke: '#2a3138' }, values: timeTicks },
        { stroke: '#9aa4ad', grid: { stroke: '#2a3138' }, size: 60 }],
  };
  box.replaceChildren();
  box.uplot = new uPlot(opts, data, box);
  box.uplot.thresholds = lines; // the hook reads the array it was given
  box.uplotSmall = small;
}

// timeTicks labels the time axis in Beijing time, 24-hour: hh:mm (or
// hh:mm:ss for ticks under a minute apart) within a day, MM-DD hh:mm
// beyond (the same in every language).
function timeTicks(u, splits) {
  const span = (u.scales.x.max ?? 0) - (u.scales.x.min ?? 0);
  const gap = splits.length > 1 ? splits[1] - splits[0] : 60;
  return splits.map((ts) => {
    const s = local(new Date(ts * 1000).toISOString()); // YYYY-MM-DD hh:mm:ss
    if (span > 86400) return s.slice(5, 16);
    return gap < 60 ? s.slice(11, 19) : s.slice(11, 16);
  });
}

// ---------- words ----------

// fmtValue is a reading in words: detectors say detected or clear.
export function fmtValue(kind, v, unit) {
  if (v === null || v === undefined || !Number.isFinite(Number(v))) return '—';
  if (DETECTORS.includes(kind)) return Number(v) >= 0.5 ? t('sensors.detected') : t('sensors.clear');
  const n = Number(v);
  const s = Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : String(Math.round(n * 100) / 100);
  return unit ? `${s} ${unit}` : s;
}

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
  };
  const card = el('div', { role: 'button', tabindex: '0', class: 'sn-card', 'data-testid': 'sensor-card' },
    el('span', { class: 'sn-top' }, refs.name, refs.state), refs.value, refs.where, refs.spark,
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
  card.className = `sn-card st-${st}`;
  Object.assign(card.dataset, { sensor: s.id, edge: s.edge, kind: s.kind, state: st, value: String(s.value ?? '') });
  refs.name.textContent = s.name || s.id;
  refs.state.textContent = tEnum('sensors.state', st);
  refs.value.textContent = st === 'unknown' ? '—' : fmtValue(s.kind, s.value, s.unit);
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

// ---------- the alert detail ----------

// sensorFacts is a sensor alert's reading and rule in words.
export function sensorFacts(a) {
  const s = a.sensor;
  const value = fmtValue(s.kind, s.value, s.unit);
  const threshold = fmtValue(s.kind, s.threshold, s.unit);
  const where = [s.name || s.sensor, s.location].filter(Boolean).join(' · ');
  switch (s.rule) {
    case 'rate_of_rise':
      return t('sensors.alert_rate', { value, rate: fmtValue('', s.threshold, `${s.unit ?? ''}/min`), where });
    case 'silent':
      return t('sensors.alert_silent', { value, where });
    case 'detector':
      return t('sensors.alert_detector', { where });
    default:
      return t('sensors.alert_threshold', { value, rule: tEnum('sensors.rule', s.rule), threshold, where });
  }
}

// renderSensorAlert fills box (the detail's sensor part) for alert a:
// the facts line and a chart of a.sensor.recent with the crossed
// threshold drawn. Drawn again only when the alert's readings change.
export async function renderSensorAlert(box, a) {
  const s = a.sensor;
  box.hidden = !s;
  if (!s) return;
  injectCSS(new URL('./sensors.css', import.meta.url));
  const key = `${a.id}:${(s.recent ?? []).length}:${s.value}`;
  let facts = box.querySelector('[data-testid="sensor-facts"]');
  let plot = box.querySelector('[data-testid="sensor-alert-chart"]');
  if (!facts) {
    facts = el('p', { class: 'meta', 'data-testid': 'sensor-facts' });
    plot = el('div', { class: 'sn-plot', 'data-testid': 'sensor-alert-chart' });
    box.replaceChildren(el('h3', { 'data-i18n': 'sensors.alert_chart' }), facts, plot);
    applyI18n(box);
  }
  facts.textContent = sensorFacts(a);
  box.dataset.rule = s.rule;
  box.dataset.value = String(s.value);
  box.dataset.threshold = String(s.threshold ?? '');
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  const lineAt = ['alarm', 'warning'].includes(s.rule) ? s.threshold : NaN;
  const recent = (s.recent ?? []).map((p) => ({ t: p.t, v: p.v, min: p.min, max: p.max }));
  await drawChart(plot, `alert:${a.id}`, recent, {
    warn: s.rule === 'warning' ? lineAt : NaN, alarm: s.rule === 'alarm' ? lineAt : NaN, unit: s.unit,
  });
}
