// Sensor charts and readings, shared by the sensor page (sensors.js),
// the alert queue's cards and detail (app.js) and the red alert's pop-up
// (alarm.js): the vendored uPlot (vendor/uPlot.iife.min.js, shipped with
// the console: no network) loaded once, a chart or sparkline with the
// warning and alarm thresholds drawn as dashed lines, a reading in words,
// and a sensor alert's reading against its threshold, coloured by the
// alert's colour (yellow 预警 or silent, red 报警).
//
// Every chart's plotted points are readable for tests and tools as
// window.vigilSensors.chartData(id): id 'spark:EDGE/SENSOR',
// 'history:EDGE/SENSOR', 'alert:ALERT_ID' (the detail), 'card:ALERT_ID'
// (a queue card) or 'popup:ALERT_ID'. Data is set as text only.
import { t, tEnum, applyI18n, currentLang } from './i18n.js';
import { el, injectCSS } from './shared/dom.js';
import { local } from './localtime.js';

export const DETECTORS = ['smoke', 'water_leak']; // boolean kinds: 1 is "detected"
const COLOURS = { value: '#58a6ff', band: '#58a6ff55', warn: '#f5c542', alarm: '#e5484d' };
const TZ = 'Asia/Shanghai'; // the console's times are Beijing time (localtime.js)
const THUMB = { width: 160, height: 56 }; // a queue card's picture box is 10rem wide

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

export function num(v) { return v === null || v === undefined || v === '' ? NaN : Number(v); }

// drawChart (re)draws chart id in box: points [{t, v, min, max}],
// thresholds, size. small: a sparkline without axes or legend.
// width and height: a sparkline's size (160×40 by default).
export async function drawChart(box, id, points, { warn, alarm, unit = '', small = false, step = 'raw', width: w = 160, height: h = 40 } = {}) {
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
  const width = small ? w : Math.max(320, Math.min(box.clientWidth || 800, 1200));
  const height = small ? h : 280;
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
  let reading = box.querySelector('[data-testid="sensor-reading"]');
  if (!facts) {
    facts = el('p', { class: 'meta', 'data-testid': 'sensor-facts' });
    reading = readingEl(a);
    reading.classList.add('sn-reading-big');
    plot = el('div', { class: 'sn-plot', 'data-testid': 'sensor-alert-chart' });
    box.replaceChildren(el('h3', { 'data-i18n': 'sensors.alert_chart' }), reading, facts, plot);
    applyI18n(box);
  }
  fillReading(reading, a);
  facts.textContent = sensorFacts(a);
  box.dataset.rule = s.rule;
  box.dataset.value = String(s.value);
  box.dataset.threshold = String(s.threshold ?? '');
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  await drawAlertChart(plot, `alert:${a.id}`, a, {});
}

// ---------- a sensor alert's reading against its threshold ----------

// readingEl is a sensor alert's reading against the threshold it crossed
// ("45.2 %LEL ≥ alarm 40 %LEL"), coloured by the alert's colour.
export function readingEl(a) {
  injectCSS(new URL('./sensors.css', import.meta.url));
  const p = el('p', { 'data-testid': 'sensor-reading' });
  fillReading(p, a);
  return p;
}

function fillReading(p, a) {
  const s = a.sensor;
  const level = a.severity === 'red' ? 'red' : 'yellow';
  p.classList.add('sn-reading', `sn-level-${level}`);
  p.classList.remove(`sn-level-${level === 'red' ? 'yellow' : 'red'}`);
  Object.assign(p.dataset, { level, value: String(s.value), threshold: String(s.threshold ?? ''), rule: s.rule || '' });
  const value = el('strong', { class: 'sn-reading-value', text: fmtValue(s.kind, s.value, s.unit) });
  let limit = '';
  if (s.rule === 'silent') limit = t('sensors.reading_silent');
  else if (s.rule === 'detector' || DETECTORS.includes(s.kind)) limit = '';
  else if (s.rule === 'rate_of_rise') limit = t('sensors.reading_rate', { rate: fmtValue('', s.threshold, `${s.unit ?? ''}/min`) });
  else limit = t('sensors.reading_vs', { rule: tEnum('sensors.rule', s.rule), threshold: fmtValue(s.kind, s.threshold, s.unit) });
  p.replaceChildren(value, ...(limit ? [' ', el('span', { class: 'sn-reading-limit', text: limit })] : []));
}

const thumbs = new Map(); // where:alert id → {key, box}; a queue card is rebuilt on every render

// sensorThumb is a sensor alert's small picture for a queue card or the
// pop-up (where: 'card' or 'popup'): its reading against the threshold
// and a sparkline of its recent readings with the threshold line. The
// same element comes back while the alert's readings are unchanged.
export function sensorThumb(a, where) {
  injectCSS(new URL('./sensors.css', import.meta.url));
  const s = a.sensor;
  const id = `${where}:${a.id}`;
  const key = `${(s.recent ?? []).length}:${s.value}:${a.severity}:${currentLang()}`;
  const have = thumbs.get(id);
  if (have && have.key === key) return have.box;
  const plot = el('div', { class: 'sn-thumb-plot', 'data-testid': `${where}-sensor-chart` });
  const box = el('div', { class: `sn-thumb sn-level-${a.severity === 'red' ? 'red' : 'yellow'}`, 'data-testid': `${where}-sensor` },
    readingEl(a), plot);
  thumbs.set(id, { key, box });
  if (thumbs.size > 400) thumbs.delete(thumbs.keys().next().value); // the oldest
  drawAlertChart(plot, id, a, { small: true, ...THUMB }).catch(() => {});
  return box;
}

// drawAlertChart plots a sensor alert's recent readings with the crossed
// threshold (a warning or an alarm) drawn.
function drawAlertChart(plot, id, a, opts) {
  const s = a.sensor;
  const lineAt = ['alarm', 'warning'].includes(s.rule) ? s.threshold : NaN;
  const recent = (s.recent ?? []).map((p) => ({ t: p.t, v: p.v, min: p.min, max: p.max }));
  return drawChart(plot, id, recent, {
    warn: s.rule === 'warning' ? lineAt : NaN, alarm: s.rule === 'alarm' ? lineAt : NaN, unit: s.unit, ...opts,
  });
}

// silentSince says since when a silent sensor has not reported, and how
// long ago ("no reading since 08:12:05, 3 min ago").
export function silentSince(time, now = Date.now()) {
  if (!time || !Number.isFinite(Date.parse(time))) return t('sensors.silent_never');
  const mins = Math.max(0, Math.floor((now - Date.parse(time)) / 60000));
  return t('sensors.silent_since', { time: local(time).slice(11), ago: mins < 1 ? t('sensors.ago_now') : t('sensors.ago_min', { n: mins }) });
}
