// Shift report (#/report): for a site and a time range (by default the last
// 12 hours), the figures of GET /api/v1/reports/shift — alerts by kind and
// colour, time to acknowledge and to resolve, escalations, what is still
// open, the alerts resolved as false alarms, and every sensor alert with
// its reading against its threshold (yellow or red) and its disposal —
// with a CSV download
// (&format=csv) and a print stylesheet (report.css: window.print() gives a
// clean page).
import { t, tEnum, applyI18n, onLangChange } from './i18n.js';
import { api } from './api.js';
import { local, toInput, fromInput } from './localtime.js';
import { el, td, injectCSS } from './shared/dom.js';
import { cause } from './describe.js';
import { readingEl } from './sensorchart.js';

const SHIFT_MS = 12 * 3600 * 1000;

export function mount(root) {
  injectCSS(new URL('./report.css', import.meta.url));
  let report = null;
  let error = '';

  const site = el('select', { 'data-testid': 'report-site' });
  const now = Date.now();
  const from = el('input', { type: 'datetime-local', step: '1', 'data-testid': 'report-from', value: toInput(now - SHIFT_MS) });
  const to = el('input', { type: 'datetime-local', step: '1', 'data-testid': 'report-to', value: toInput(now) });
  const show = el('button', { type: 'submit', 'data-testid': 'report-show', 'data-i18n': 'report.show' });
  const print = el('button', { type: 'button', class: 'ghost', 'data-testid': 'report-print', 'data-i18n': 'report.print' });
  const csv = el('a', { class: 'button ghost', 'data-testid': 'report-csv', 'data-i18n': 'report.csv', download: 'shift-report.csv', href: '#/report' });
  const form = el('form', { class: 'report-form no-print', 'data-testid': 'report-form' },
    el('label', {}, el('span', { 'data-i18n': 'report.site' }), site),
    el('label', {}, el('span', { 'data-i18n': 'report.from' }), from),
    el('label', {}, el('span', { 'data-i18n': 'report.to' }), to),
    show, print, csv);
  const out = el('div', { class: 'report-body', 'data-testid': 'report-body' });
  root.replaceChildren(el('h2', { 'data-i18n': 'report.title' }), form, el('p', { class: 'muted no-print', 'data-i18n': 'evidence.tz_note' }), out);

  function query() {
    const f = fromInput(from.value);
    const tt = fromInput(to.value);
    const q = new URLSearchParams();
    if (site.value) q.set('site', site.value);
    if (f) q.set('from', f.toISOString());
    if (tt) q.set('to', tt.toISOString());
    return q;
  }

  async function loadSites() {
    try {
      const res = await api('/api/v1/sites');
      const roots = Array.isArray(res) ? res : res?.sites ?? (res?.township ? [res.township] : res?.id ? [res] : []);
      const opts = [];
      const walk = (n, depth) => {
        opts.push(el('option', { value: n.id, text: `${'\u00a0\u00a0'.repeat(depth)}${n.name || n.id}` }));
        for (const c of n.children ?? []) walk(c, depth + 1);
      };
      for (const r of roots) walk(r, 0);
      site.replaceChildren(...opts);
    } catch { /* the report still runs for every site */ }
  }

  async function load() {
    const q = query();
    const c = new URLSearchParams(q);
    c.set('format', 'csv');
    csv.href = `/api/v1/reports/shift?${c}`;
    try {
      report = await api(`/api/v1/reports/shift?${q}`);
      error = '';
    } catch (e) {
      report = null;
      error = e.status === 404 ? t('report.unavailable') : t('error.generic', { message: e.message });
    }
    render();
  }

  function secs(v) {
    if (!Number.isFinite(Number(v))) return '—';
    const s = Math.round(Number(v));
    return s < 60 ? t('report.seconds', { s }) : t('report.minutes', { m: Math.floor(s / 60), s: String(s % 60).padStart(2, '0') });
  }

  function figure(key, value, testid) {
    return el('div', { class: 'figure', 'data-testid': testid }, el('span', { class: 'muted', 'data-i18n': key }), el('strong', { text: String(value ?? 0) }));
  }

  function render() {
    if (!report) {
      out.replaceChildren(el('p', { class: error ? 'error' : 'muted', 'data-testid': 'report-error', text: error || t('report.loading') }));
      return;
    }
    const r = report;
    const sev = r.by_severity ?? {};
    const head = el('p', { class: 'report-head', 'data-testid': 'report-head' },
      t('report.head', { site: site.selectedOptions[0]?.textContent.trim() || r.site || '', from: local(r.from), to: local(r.to) }),
      el('br'), t('report.generated', { time: local(r.generated_at) }));
    const figures = el('div', { class: 'figures', 'data-testid': 'report-figures' },
      figure('sev.red', sev.red, 'report-red'), figure('sev.yellow', sev.yellow, 'report-yellow'), figure('sev.green', sev.green, 'report-green'),
      figure('report.escalations', r.escalations, 'report-escalations'), figure('report.unresolved', r.unresolved, 'report-unresolved'));
    const timing = el('table', { class: 'report-table', 'data-testid': 'report-timing' },
      el('thead', {}, el('tr', {}, el('th'), el('th', { 'data-i18n': 'report.col.n' }), el('th', { 'data-i18n': 'report.col.median' }), el('th', { 'data-i18n': 'report.col.p90' }))),
      el('tbody', {}, ...[['report.acknowledge', r.acknowledge], ['report.resolve', r.resolve]].map(([k, v]) => el('tr', {},
        el('th', { 'data-i18n': k }), td(String(v?.n ?? 0)), td(secs(v?.median_s)), td(secs(v?.p90_s))))));
    const totals = el('table', { class: 'report-table', 'data-testid': 'report-totals' },
      el('thead', {}, el('tr', {}, el('th', { 'data-i18n': 'report.col.kind' }), el('th', { 'data-i18n': 'report.col.severity' }), el('th', { 'data-i18n': 'report.col.count' }))),
      el('tbody', {}, ...(r.totals ?? []).map((x) => el('tr', { 'data-testid': 'report-total' },
        td(cause({ kind: x.kind, severity: x.severity })), td(tEnum('sev', x.severity), `sev-${x.severity}`), td(String(x.count))))));
    const fa = r.false_alarms ?? [];
    const falseAlarms = fa.length ? el('table', { class: 'report-table', 'data-testid': 'report-false-alarms' },
      el('thead', {}, el('tr', {}, ...['time', 'kind', 'source', 'actor', 'note'].map((k) => el('th', { 'data-i18n': `report.col.${k}` })))),
      el('tbody', {}, ...fa.map((x) => el('tr', {}, td(local(x.time)), td(cause({ kind: x.kind })), td(x.source), td(x.actor), td(x.note)))))
      : el('p', { class: 'muted', 'data-i18n': 'report.no_false_alarms' });
    const sn = r.sensors ?? [];
    const sensors = sn.length ? el('table', { class: 'report-table', 'data-testid': 'report-sensors' },
      el('thead', {}, el('tr', {}, ...['time', 'sensor', 'reading', 'state', 'dispatched', 'disposal', 'actor'].map((k) => el('th', { 'data-i18n': `report.col.${k}` })))),
      el('tbody', {}, ...sn.map((x) => el('tr', { 'data-testid': 'report-sensor', dataset: { alertId: x.alert_id, severity: x.severity } },
        td(local(x.time)), td([x.name || x.source, x.location].filter(Boolean).join(' · ')),
        el('td', {}, readingEl({ severity: x.severity, sensor: { kind: x.sensor_kind, value: x.value, unit: x.unit, rule: x.rule, threshold: x.threshold } })),
        td(tEnum('state', x.state)), td(x.dispatched_to), td(x.disposal, 'report-disposal'), td(x.resolved_by)))))
      : el('p', { class: 'muted', 'data-i18n': 'report.no_sensors' });
    out.replaceChildren(head, figures,
      el('h3', { 'data-i18n': 'report.timing' }), timing,
      el('h3', { 'data-i18n': 'report.totals' }), (r.totals ?? []).length ? totals : el('p', { class: 'muted', 'data-i18n': 'report.no_alerts' }),
      el('h3', { 'data-i18n': 'report.false_alarms' }), falseAlarms,
      el('h3', { 'data-i18n': 'report.sensors' }), sensors);
    applyI18n(out);
  }

  form.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
  print.addEventListener('click', () => window.print());
  onLangChange(() => { applyI18n(root); render(); });
  applyI18n(root);
  render();
  loadSites().then(load);
  return {};
}
