// Fleet: the installer's start page. Every edge with its link, cameras
// and gates (GET /api/v1/edges) and its latest self-test (GET
// /api/v1/selftests, installer and admin); self-tests are no longer guard
// alerts. Refreshed every REFRESH_MS while shown. An edge registered with
// a GB/T 28181 police platform shows that registration as its heartbeat
// said it: online since when, the platform's clock offset (recorded, never
// applied), alarms waiting; or offline and why.
import { t, tEnum, applyI18n, onLangChange } from './i18n.js';
import { api } from './api.js';
import { local } from './localtime.js';
import { el, td } from './shared/dom.js';
import { selftestLine, gateDoor } from './describe.js';

const REFRESH_MS = 10000;

export function mount(root) {
  let edges = [];
  let tests = null; // null: not available from this central
  let testsError = '';

  function testsOf(res) {
    if (Array.isArray(res)) return res;
    return res?.selftests ?? res?.alerts ?? res?.edges ?? [];
  }

  async function load() {
    try { edges = (await api('/api/v1/edges'))?.edges ?? []; } catch { edges = []; }
    try {
      tests = testsOf(await api('/api/v1/selftests'));
      testsError = '';
    } catch (e) {
      tests = null;
      testsError = e.status === 404 ? t('fleet.selftests_unavailable') : t('error.generic', { message: e.message });
    }
    render();
  }

  // gbCell is the edge's GB/T 28181 registration ('—' without one).
  function gbCell(g) {
    const cell = el('td', { 'data-testid': 'fleet-gb28181' });
    if (!g) {
      cell.textContent = '—';
      return cell;
    }
    cell.dataset.state = g.state;
    cell.className = g.online ? 'ok' : 'bad';
    const parts = [];
    if (g.online) {
      parts.push(g.registered_since ? t('fleet.gb.online_since', { time: local(g.registered_since) }) : t('fleet.gb.online'));
      if (g.clock_sampled_at) parts.push(t('fleet.gb.clock', { s: (g.clock_offset_ms / 1000).toFixed(1) }));
    } else {
      parts.push(g.last_error ? t('fleet.gb.offline_why', { error: g.last_error }) : t('fleet.gb.offline'));
    }
    if (g.pending_alarms) parts.push(t('fleet.gb.pending', { n: g.pending_alarms }));
    if (g.dropped_alarms) parts.push(t('fleet.gb.dropped', { n: g.dropped_alarms }));
    cell.textContent = parts.join(' · ');
    cell.title = `${g.device_id} → ${g.server}`;
    return cell;
  }

  function render() {
    const byEdge = new Map();
    for (const s of tests ?? []) {
      const id = s.edge_id ?? s.edge ?? s.id;
      const a = s.alert ?? s;
      const prev = byEdge.get(id);
      if (!prev || new Date(a.time) > new Date(prev.time)) byEdge.set(id, a);
    }
    const rows = edges.map((e) => {
      const st = byEdge.get(e.id);
      const cams = e.cameras ?? [];
      const gates = e.gates ?? [];
      const camOn = cams.filter((c) => c.online).length;
      const tr = el('tr', { 'data-testid': 'fleet-edge', dataset: { edgeId: e.id, online: String(!!e.online) } },
        td(e.id),
        td(e.revoked_at ? t('fleet.revoked') : e.online ? t('sites.online') : t('sites.offline'), e.online ? 'ok' : 'bad'),
        td(e.last_seen ? local(e.last_seen) : '—'),
        td(t('fleet.cameras_online', { online: camOn, total: cams.length })),
        td(gates.map((g) => `${g.name || g.id}: ${gateDoor(g.state)}`).join(', ') || '—'),
        gbCell(e.gb28181));
      const cell = el('td', { 'data-testid': 'fleet-selftest' });
      if (st) {
        cell.dataset.severity = st.severity;
        cell.className = `sev-${st.severity}`;
        cell.append(el('strong', { text: tEnum('sev', st.severity) }), ` ${selftestLine(st)} · `, el('time', { text: local(st.time) }));
      } else {
        cell.textContent = tests === null ? '—' : t('fleet.no_selftest');
      }
      tr.append(cell);
      return tr;
    });
    const table = el('table', { class: 'fleet-table', 'data-testid': 'fleet-table' },
      el('thead', {}, el('tr', {}, ...['edge', 'link', 'last_seen', 'cameras', 'gates', 'gb28181', 'selftest'].map((k) => el('th', { 'data-i18n': `fleet.col.${k}` })))),
      el('tbody', {}, ...rows));
    const parts = [el('h2', { 'data-i18n': 'fleet.title' }), el('p', { class: 'muted', 'data-i18n': 'fleet.intro' })];
    if (testsError) parts.push(el('p', { class: 'muted', 'data-testid': 'fleet-selftests-error', text: testsError }));
    parts.push(rows.length ? table : el('p', { class: 'muted', 'data-i18n': 'fleet.none' }));
    root.replaceChildren(...parts);
    applyI18n(root);
  }

  root.replaceChildren(el('p', { class: 'muted', 'data-i18n': 'fleet.loading' }));
  applyI18n(root);
  load();
  const timer = setInterval(() => { if (!root.hidden) load(); }, REFRESH_MS);
  onLangChange(render);
  return { destroy() { clearInterval(timer); } };
}
