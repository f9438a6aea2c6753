// Evidence page (police liaisons; supervisors may search only): search a
// place and a time window (GET /api/v1/evidence/search) and see, per
// camera, where video was recorded, where it is missing and where alerts
// happened; request the range as a signed bundle
// (POST /api/v1/evidence/requests); follow the requests
// (GET /api/v1/evidence/requests, every 2 s while the page is open) and
// download a bundle when it is ready. Every access is in the audit log.
// Data from the server is only ever set as text, never as HTML.
import { t, tEnum, applyI18n, onLangChange } from './i18n.js';
import { api } from './api.js';
import { local, toInput, fromInput } from './localtime.js';
import { el, td, injectCSS } from './shared/dom.js';

const POLL_MS = 2000;
const EXPORT_ROLES = ['police_liaison', 'admin'];
const DEFAULT_WINDOW_MS = 10 * 60 * 1000;

const PAGE = `
<h2 data-i18n="evidence.title"></h2>
<form class="panel ev-search" data-testid="ev-search">
  <label><span data-i18n="evidence.entrance"></span>
    <select name="entrance" data-testid="ev-entrance"><option value="" data-i18n="evidence.any"></option></select></label>
  <label><span data-i18n="evidence.camera"></span>
    <select name="camera" data-testid="ev-camera"><option value="" data-i18n="evidence.any"></option></select></label>
  <label><span data-i18n="evidence.site"></span>
    <input name="site" data-testid="ev-site" data-i18n-placeholder="evidence.site_hint"></label>
  <label><span data-i18n="evidence.from"></span>
    <input name="from" type="datetime-local" step="1" required data-testid="ev-from"></label>
  <label><span data-i18n="evidence.to"></span>
    <input name="to" type="datetime-local" step="1" required data-testid="ev-to"></label>
  <button type="submit" data-testid="ev-search-submit" data-i18n="evidence.search"></button>
  <p class="muted ev-tz" data-i18n="evidence.tz_note"></p>
</form>
<p class="error" role="alert" data-testid="ev-error" hidden></p>
<section class="ev-results" data-testid="ev-results" hidden>
  <h3 data-i18n="evidence.results"></h3>
  <p class="muted ev-range" data-testid="ev-range"></p>
  <ul class="ev-legend">
    <li><span class="ev-key rec"></span><span data-i18n="evidence.legend.recorded"></span></li>
    <li><span class="ev-key gap"></span><span data-i18n="evidence.legend.gap"></span></li>
    <li><span class="ev-key alert"></span><span data-i18n="evidence.legend.alert"></span></li>
    <li><span class="ev-key got"></span><span data-i18n="evidence.legend.retrieved"></span></li>
  </ul>
  <div class="ev-cams" data-testid="ev-timelines"></div>
  <form class="panel ev-request" data-testid="ev-request-form">
    <h3 data-i18n="evidence.request_title"></h3>
    <label><span data-i18n="evidence.case_number"></span>
      <input name="case_number" required maxlength="100" data-testid="ev-case"></label>
    <label><span data-i18n="evidence.reason"></span>
      <textarea name="reason" required maxlength="2000" rows="2" data-testid="ev-reason"></textarea></label>
    <button type="submit" data-testid="ev-request-submit" data-i18n="evidence.request"></button>
    <p class="muted" data-i18n="evidence.request_note"></p>
  </form>
  <p class="muted" data-testid="ev-search-only" data-i18n="evidence.search_only" hidden></p>
</section>
<section class="ev-requests" data-testid="ev-requests" hidden>
  <h3 data-i18n="evidence.requests"></h3>
  <table>
    <thead><tr>
      <th data-i18n="evidence.col.case"></th><th data-i18n="evidence.col.created"></th>
      <th data-i18n="evidence.col.range"></th><th data-i18n="evidence.col.cameras"></th>
      <th data-i18n="evidence.col.status"></th><th data-i18n="evidence.col.download"></th>
    </tr></thead>
    <tbody data-testid="ev-request-list"></tbody>
  </table>
  <p class="muted" data-testid="ev-no-requests" data-i18n="evidence.no_requests" hidden></p>
</section>`;

export function statusText(r) {
  if (r.status === 'fetching') return t('evidence.fetching', { percent: r.percent ?? 0 });
  return tEnum('evidence.status', r.status);
}

export function mount(root, { session } = {}) {
  injectCSS(new URL('./evidence.css', import.meta.url));
  const gen = String(Number(root.dataset.gen || 0) + 1); // a newer mount (another user) retires this one
  root.dataset.gen = gen;
  const live = () => root.dataset.gen === gen;
  root.innerHTML = PAGE;
  root.classList.add('evidence');
  applyI18n(root);
  const q = (sel) => root.querySelector(sel);
  const form = q('.ev-search');
  const errEl = q('[data-testid="ev-error"]');
  const canExport = !!session && EXPORT_ROLES.includes(session.role);
  let result = null;
  let timer = null;
  let requests = [];

  const now = Date.now();
  form.elements.from.value = toInput(now - DEFAULT_WINDOW_MS);
  form.elements.to.value = toInput(now);
  q('.ev-request').hidden = !canExport;
  q('[data-testid="ev-search-only"]').hidden = canExport;
  q('.ev-requests').hidden = !canExport;

  function showError(e) {
    errEl.textContent = e ? t('error.generic', { message: e.message || String(e) }) : '';
    errEl.hidden = !e;
  }

  async function loadChoices() {
    try {
      const res = await api('/api/v1/edges');
      const ent = form.elements.entrance;
      const cam = form.elements.camera;
      const sites = new Set();
      for (const e of res.edges ?? []) {
        if (e.site_id && !sites.has(e.site_id)) {
          sites.add(e.site_id);
          ent.append(el('option', { value: e.site_id, text: e.site_id }));
        }
        for (const c of e.cameras ?? []) {
          cam.append(el('option', { value: `${e.id}/${c.id}`, text: `${e.id} / ${c.id}` }));
        }
      }
    } catch (e) { showError(e); }
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(null);
    const from = fromInput(form.elements.from.value);
    const to = fromInput(form.elements.to.value);
    if (!from || !to || to <= from) {
      showError(new Error(t('evidence.bad_range')));
      return;
    }
    const p = new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
    for (const k of ['site', 'entrance', 'camera']) if (form.elements[k].value) p.set(k, form.elements[k].value.trim());
    const btn = q('[data-testid="ev-search-submit"]');
    btn.disabled = true;
    try {
      result = await api(`/api/v1/evidence/search?${p}`);
      renderResult();
    } catch (e) { showError(e); } finally { btn.disabled = false; }
  });

  function renderResult() {
    if (!result) return;
    q('.ev-results').hidden = false;
    q('[data-testid="ev-range"]').textContent = t('evidence.range', { from: local(result.from), to: local(result.to) });
    const box = q('.ev-cams');
    box.replaceChildren();
    const start = Date.parse(result.from);
    const span = Math.max(1, Date.parse(result.to) - start);
    const pct = (iso) => Math.min(100, Math.max(0, ((Date.parse(iso) - start) / span) * 100));
    let n = 0;
    for (const e of result.edges ?? []) {
      for (const c of e.cameras ?? []) {
        n++;
        const row = el('div', { class: 'ev-cam', 'data-testid': 'ev-camera-row', dataset: { camera: `${e.id}/${c.id}` } });
        const pick = el('input', { type: 'checkbox', checked: true, hidden: !canExport, 'data-testid': 'ev-pick', dataset: { edge: e.id, camera: c.id } });
        const head = el('label', { class: 'ev-cam-head' }, pick,
          el('strong', { text: c.name || c.id }), el('span', { class: 'muted', text: ` ${e.site_id || ''} · ${e.id}` }));
        const bar = el('div', { class: 'ev-bar', 'data-testid': 'ev-timeline' });
        const add = (cls, a, b, title) => {
          const s = el('div', { class: `ev-seg ${cls}`, title, 'data-testid': `ev-${cls}` });
          const l = pct(a);
          s.style.left = `${l}%`;
          s.style.width = `${Math.max(0.4, pct(b) - l)}%`;
          bar.append(s);
        };
        const rec = c.recordings;
        let note = '';
        if (c.recordings_status === 'ok' && rec) {
          for (const s of rec.spans ?? []) add('rec', s.start, s.end, `${t('evidence.legend.recorded')}: ${local(s.start)} – ${local(s.end)}`);
          for (const s of rec.gaps ?? []) add('gap', s.start, s.end, `${t('evidence.legend.gap')}: ${local(s.start)} – ${local(s.end)}`);
          note = t('evidence.summary', { spans: (rec.spans ?? []).length, gaps: (rec.gaps ?? []).length });
        } else if (c.recordings_status === 'edge_offline') {
          note = t('evidence.edge_offline');
        } else {
          note = t('evidence.recordings_error', { error: c.recordings_error || '' });
        }
        for (const r of c.retrieved ?? []) add('got', r.start, r.end, `${t('evidence.legend.retrieved')}: ${r.case_number}`);
        for (const a of c.alerts ?? []) {
          const m = el('div', { class: `ev-alert sev-${a.severity}`, 'data-testid': 'ev-alert',
            title: `${local(a.time)} ${tEnum('kind', a.kind)} · ${tEnum('state', a.state)}` });
          m.style.left = `${pct(a.time)}%`;
          bar.append(m);
        }
        const foot = el('p', { class: 'muted ev-note', text: note });
        if ((c.alerts ?? []).length) foot.append(` · ${t('evidence.alerts', { count: c.alerts.length })}`);
        row.append(head, bar, foot);
        box.append(row);
      }
    }
    if (!n) box.append(el('p', { class: 'empty', text: t('evidence.no_cameras') }));
  }

  q('.ev-request').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(null);
    if (!result) return;
    const f = ev.target.elements;
    const cameras = [...root.querySelectorAll('[data-testid="ev-pick"]')].filter((c) => c.checked)
      .map((c) => ({ edge: c.dataset.edge, camera: c.dataset.camera }));
    if (!cameras.length) {
      showError(new Error(t('evidence.pick_camera')));
      return;
    }
    const btn = q('[data-testid="ev-request-submit"]');
    btn.disabled = true;
    try {
      await api('/api/v1/evidence/requests', {
        method: 'POST',
        body: { case_number: f.case_number.value.trim(), reason: f.reason.value.trim(), cameras, from: result.from, to: result.to },
      });
      await loadRequests();
    } catch (e) { showError(e); } finally { btn.disabled = false; }
  });

  async function loadRequests() {
    if (!canExport) return;
    try {
      const res = await api('/api/v1/evidence/requests');
      requests = res.requests ?? [];
      renderRequests();
    } catch { /* shown on the next try */ }
  }

  function renderRequests() {
    const body = q('[data-testid="ev-request-list"]');
    body.replaceChildren();
    q('[data-testid="ev-no-requests"]').hidden = requests.length > 0;
    for (const r of requests) {
      const tr = el('tr', { 'data-testid': 'ev-request-row', dataset: { id: r.id, status: r.status } });
      // A camera whose codec or size changed in the range comes in parts
      // (part 0, 1, …): name it once.
      const cams = [...new Set((r.items ?? []).map((it) => `${it.edge}/${it.camera}`))].join(', ');
      const st = el('td', { class: `ev-status st-${r.status}`, 'data-testid': 'ev-request-status', text: statusText(r) });
      const details = (r.items ?? []).filter((it) => it.detail).map((it) => `${it.camera}: ${it.detail}`);
      if (details.length) st.title = details.join('\n');
      const dl = el('td');
      if (r.status === 'ready') {
        dl.append(el('a', {
          href: `/api/v1/evidence/requests/${encodeURIComponent(r.id)}/bundle.zip`,
          download: `${r.id}.zip`, 'data-testid': 'ev-bundle-link', text: t('evidence.download'),
        }));
        (r.items ?? []).forEach((it, i) => {
          dl.append(' ', el('a', {
            class: 'ev-video', href: `/api/v1/evidence/requests/${encodeURIComponent(r.id)}/items/${i}/video.mp4`,
            download: true, title: t('evidence.video_only'), text: it.part ? `${it.camera} (${it.part + 1})` : it.camera,
          }));
        });
      }
      tr.append(td(r.case_number), td(local(r.created_at)), td(`${local(r.from)} – ${local(r.to)}`), td(cams), st, dl);
      body.append(tr);
    }
  }

  function poll() {
    clearTimeout(timer);
    if (location.hash !== '#/evidence' || !live()) { timer = null; return; }
    loadRequests().finally(() => { timer = setTimeout(poll, POLL_MS); });
  }
  window.addEventListener('hashchange', () => { if (location.hash === '#/evidence' && !timer && live()) poll(); });
  onLangChange(() => { if (live()) { renderResult(); renderRequests(); } });
  loadChoices();
  poll();
}
