// Admin page: users, edges (revoke), enrolment tokens. Central serves this
// page to admins only; every call below is checked again by the server.
import { t, tEnum, applyI18n, setLang, currentLang, onLangChange } from '/i18n.js';
import { api } from '/api.js';

const $ = (id) => document.getElementById(id);
const ROLES = ['guard', 'supervisor', 'police_liaison', 'installer', 'admin'];

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

function button(label, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'ghost';
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

async function loadUsers() {
  const res = await api('/api/v1/users');
  $('users').replaceChildren(...res.users.map((u) => {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    td.append(button(t('admin.delete'), async () => {
      if (!confirm(t('admin.confirm_delete', { name: u.name }))) return;
      await api(`/api/v1/users/${encodeURIComponent(u.name)}`, { method: 'DELETE' });
      loadUsers();
    }));
    tr.append(cell(u.name), cell(tEnum('role', u.role)), cell(t('admin.created', { time: u.created_at, by: u.created_by || '' })), td);
    return tr;
  }));
}

async function loadEdges() {
  const res = await api('/api/v1/edges');
  $('edges').replaceChildren(...(res.edges ?? []).map((e) => {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    if (e.revoked_at) td.textContent = t('admin.revoked');
    else {
      td.append(button(t('admin.revoke'), async () => {
        if (!confirm(t('admin.confirm_revoke', { id: e.id }))) return;
        await api(`/api/v1/edges/${encodeURIComponent(e.id)}/revoke`, { method: 'POST', body: { reason: 'admin page' } });
        loadEdges();
      }));
    }
    tr.append(cell(e.id), cell(e.site_id), cell(e.online ? t('sites.online') : t('sites.offline')), td);
    return tr;
  }));
}

function fillRoles() {
  const sel = $('u-role');
  const v = sel.value;
  sel.replaceChildren(...ROLES.map((r) => {
    const o = document.createElement('option');
    o.value = r;
    o.textContent = tEnum('role', r);
    return o;
  }));
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
