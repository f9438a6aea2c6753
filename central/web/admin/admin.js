// Admin page: users, edges (revoke), enrolment tokens. Central serves this
// page to admins only; every call below is checked again by the server.
import { t, tEnum, applyI18n, setLang, currentLang, onLangChange } from '/i18n.js';
import { api } from '/api.js';
import { $, el, td } from '/shared/dom.js';

const ROLES = ['guard', 'supervisor', 'police_liaison', 'installer', 'admin'];

function button(label, onClick) {
  const b = el('button', { type: 'button', class: 'ghost', text: label });
  b.addEventListener('click', onClick);
  return b;
}

async function loadUsers() {
  const res = await api('/api/v1/users');
  $('users').replaceChildren(...res.users.map((u) => {
    const del = el('td', {}, button(t('admin.delete'), async () => {
      if (!confirm(t('admin.confirm_delete', { name: u.name }))) return;
      await api(`/api/v1/users/${encodeURIComponent(u.name)}`, { method: 'DELETE' });
      loadUsers();
    }));
    return el('tr', {}, td(u.name), td(tEnum('role', u.role)), td(t('admin.created', { time: u.created_at, by: u.created_by || '' })), del);
  }));
}

async function loadEdges() {
  const res = await api('/api/v1/edges');
  $('edges').replaceChildren(...(res.edges ?? []).map((e) => {
    const revoke = e.revoked_at ? td(t('admin.revoked')) : el('td', {}, button(t('admin.revoke'), async () => {
      if (!confirm(t('admin.confirm_revoke', { id: e.id }))) return;
      await api(`/api/v1/edges/${encodeURIComponent(e.id)}/revoke`, { method: 'POST', body: { reason: 'admin page' } });
      loadEdges();
    }));
    return el('tr', {}, td(e.id), td(e.site_id), td(e.online ? t('sites.online') : t('sites.offline')), revoke);
  }));
}

function fillRoles() {
  const sel = $('u-role');
  const v = sel.value;
  sel.replaceChildren(...ROLES.map((r) => el('option', { value: r, text: tEnum('role', r) })));
  sel.value = v || 'guard';
}

$('add-user').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  try {
    await api('/api/v1/users', { method: 'POST', body: { name: $('u-name').value.trim(), role: $('u-role').value, password: $('u-password').value } });
    $('u-msg').textContent = t('admin.saved');
    $('u-password').value = '';
    loadUsers();
  } catch (e) {
    $('u-msg').textContent = t('error.generic', { message: e.message });
  }
});

$('enrol').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  try {
    const res = await api('/api/v1/enrolment-tokens', { method: 'POST', body: { edge_id: $('e-id').value.trim(), site_id: $('e-site').value.trim() } });
    $('e-out').textContent = `${t('admin.token_command')} ${res.command}`;
  } catch (e) {
    $('e-out').textContent = t('error.generic', { message: e.message });
  }
});

const lang = $('lang');
lang.value = currentLang();
lang.addEventListener('change', () => setLang(lang.value));
onLangChange(() => { fillRoles(); loadUsers(); loadEdges(); document.title = t('admin.title'); });
applyI18n(document);
document.title = t('admin.title');
fillRoles();
loadUsers().catch(() => {});
loadEdges().catch(() => {});
