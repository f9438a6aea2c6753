// Audit page (supervisors, admins): central's hash-chained audit log
// (GET /api/v1/audit) filtered by time, user, role, action and target, in
// the order it was written, a page at a time; admins check the whole
// chain with Verify (GET /api/v1/audit/verify), which names the first
// entry that was edited, removed or moved. Data is set as text only.
import { t, tEnum, applyI18n, onLangChange } from './i18n.js';
import { api } from './api.js';
import { local, toInput, fromInput } from './localtime.js';
import { el, td, injectCSS } from './shared/dom.js';

const PAGE_SIZE = 200;
const DEFAULT_WINDOW_MS = 24 * 3600 * 1000;
const ACTIONS = ['login', 'login_failed', 'logout', 'search', 'view', 'export', 'download', 'workflow',
  'config_change', 'user_change', 'backup', 'enrol', 'share', 'access_token', 'alert_escalate', 'console_mute'];
const ROLES = ['guard', 'supervisor', 'police_liaison', 'installer', 'admin'];

const PAGE = `
<h2 data-i18n="audit.title"></h2>
<form class="panel au-filter" data-testid="au-filter">
  <label><span data-i18n="audit.from"></span><input name="from" type="datetime-local" step="1" data-testid="au-from"></label>
  <label><span data-i18n="audit.to"></span><input name="to" type="datetime-local" step="1" data-testid="au-to"></label>
  <label><span data-i18n="audit.user"></span><input name="user" data-testid="au-user"></label>
  <label><span data-i18n="audit.role"></span><select name="role" data-testid="au-role"><option value="" data-i18n="audit.any"></option></select></label>
  <label><span data-i18n="audit.action"></span><select name="action" data-testid="au-action"><option value="" data-i18n="audit.any"></option></select></label>
  <label><span data-i18n="audit.target"></span><input name="target" data-testid="au-target"></label>
  <button type="submit" data-testid="au-apply" data-i18n="audit.apply"></button>
  <button type="button" class="ghost" data-testid="au-verify" data-i18n="audit.verify" hidden></button>
</form>
<p class="au-verify-result" data-testid="au-verify-result" role="status" hidden></p>
<p class="error" role="alert" data-testid="au-error" hidden></p>
<table class="au-table">
  <thead><tr>
    <th data-i18n="audit.col.seq"></th><th data-i18n="audit.col.time"></th><th data-i18n="audit.col.user"></th>
    <th data-i18n="audit.col.role"></th><th data-i18n="audit.col.action"></th><th data-i18n="audit.col.target"></th>
    <th data-i18n="audit.col.details"></th>
  </tr></thead>
  <tbody data-testid="au-rows"></tbody>
</table>
<p class="empty" data-testid="au-empty" data-i18n="audit.empty" hidden></p>
<button type="button" class="ghost" data-testid="au-more" data-i18n="audit.more" hidden></button>`;

// detailsText shows an entry's details as key: value pairs.
function detailsText(d) {
  if (!d || typeof d !== 'object') return d == null ? '' : String(d);
  return Object.entries(d).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' · ');
}

export function mount(root, { session } = {}) {
  injectCSS(new URL('./evidence.css', import.meta.url)); // the audit table's styles are there too
  const gen = String(Number(root.dataset.gen || 0) + 1); // a newer mount (another user) retires this one
  root.dataset.gen = gen;
  const live = () => root.dataset.gen === gen;
  root.innerHTML = PAGE;
  root.classList.add('audit');
  const q = (sel) => root.querySelector(sel);
  const form = q('.au-filter');
  form.elements.role.append(...ROLES.map((r) => el('option', { value: r, text: tEnum('role', r) })));
  form.elements.action.append(...ACTIONS.map((a) => el('option', { value: a, text: tEnum('audit.act', a) })));
  applyI18n(root);
  form.elements.from.value = toInput(Date.now() - DEFAULT_WINDOW_MS);
  const verifyBtn = q('[data-testid="au-verify"]');
  verifyBtn.hidden = !session || session.role !== 'admin';
  const rowsEl = q('[data-testid="au-rows"]');
  const errEl = q('[data-testid="au-error"]');
  const moreBtn = q('[data-testid="au-more"]');
  let entries = [];
  let next = 0;
  let verify = null;

  function params() {
    const p = new URLSearchParams({ limit: String(PAGE_SIZE) });
    const from = fromInput(form.elements.from.value);
    const to = fromInput(form.elements.to.value);
    if (from) p.set('from', from.toISOString());
    if (to) p.set('to', to.toISOString());
    for (const k of ['user', 'role', 'action', 'target']) {
      const v = form.elements[k].value.trim();
      if (v) p.set(k, v);
    }
    return p;
  }

  async function load(more) {
    errEl.hidden = true;
    const p = params();
    if (more) p.set('after', String(next));
    try {
      const res = await api(`/api/v1/audit?${p}`);
      entries = more ? entries.concat(res.entries ?? []) : (res.entries ?? []);
      next = res.next || 0;
      render();
    } catch (e) {
      errEl.textContent = t('error.generic', { message: e.message });
      errEl.hidden = false;
    }
  }

  function render() {
    rowsEl.replaceChildren();
    for (const e of entries) {
      const tr = el('tr', { 'data-testid': 'au-row', dataset: { seq: String(e.seq), action: e.action, user: e.actor?.user ?? '' } });
      const time = td(local(e.time));
      time.title = t('time.utc', { time: e.time });
      const hash = td(String(e.seq), 'au-seq');
      hash.title = e.hash;
      tr.append(hash, time, td(e.actor?.user ?? ''), td(e.actor?.role ? tEnum('role', e.actor.role) : ''),
        td(tEnum('audit.act', e.action), `au-act act-${e.action}`), td(e.target ?? '', 'au-target'),
        td(detailsText(e.details), 'au-details'));
      rowsEl.append(tr);
    }
    q('[data-testid="au-empty"]').hidden = entries.length > 0;
    moreBtn.hidden = !next;
    renderVerify();
  }

  function renderVerify() {
    const out = q('[data-testid="au-verify-result"]');
    if (!verify) { out.hidden = true; return; }
    out.hidden = false;
    out.dataset.ok = String(!!verify.ok);
    out.className = `au-verify-result ${verify.ok ? 'ok' : 'bad'}`;
    out.textContent = verify.ok
      ? t('audit.verify_ok', { entries: verify.entries, head: (verify.head || '').slice(0, 16) })
      : verify.break
        ? t('audit.verify_broken', { seq: verify.break.seq, kind: tEnum('audit.break', verify.break.kind), detail: verify.break.detail })
        : t('error.generic', { message: verify.error || '' });
  }

  form.addEventListener('submit', (ev) => { ev.preventDefault(); load(false); });
  moreBtn.addEventListener('click', () => load(true));
  verifyBtn.addEventListener('click', async () => {
    verifyBtn.disabled = true;
    try {
      verify = await api('/api/v1/audit/verify');
    } catch (e) {
      verify = e.status === 409 && e.data ? e.data : { ok: false, error: e.message };
    } finally { verifyBtn.disabled = false; }
    renderVerify();
  });
  window.addEventListener('hashchange', () => { if (location.hash === '#/audit' && live()) load(false); });
  onLangChange(() => { if (live()) render(); });
  load(false);
}
