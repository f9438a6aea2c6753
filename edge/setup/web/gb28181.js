// The police platform step of the setup page: the gb28181: section of
// edge.yaml (the GB/T 28181 platform the box registers with, this box's
// device ID and password, the keepalive) and a 20-digit channel ID for each
// camera, gate and sensor, edited as one form and saved as one config
// revision. The password is write-only: the page only learns whether the
// box has one. Each channel ID's type code (digits 11-13) is checked as it
// is typed; while the page is open it shows the registration as the box
// sees it.
import { t } from './i18n.js';
import { $, el } from './shared/dom.js';
import { clone } from './widgets.js';

const LIVE_EVERY = 3000; // ms between two looks at the registration
// Type codes (digits 11-13) a channel of each kind may have, and the one
// "fill from a base ID" gives: a network camera, an alarm input.
const CODES = { camera: ['131', '132'], gate: ['134'], sensor: ['134'] };
const FILL = { camera: '132', gate: '134', sensor: '134' };

let deps = null; // { api, show, waitForRestart } from setup.js
let gbform = null; // as the box runs it
let gbmodel = null; // the form being edited
let gbstate = undefined; // the registration as last read (null: none runs)
let gbpolling = false;

// initGB wires the step once the page is open; setup.js hands over its
// API call, its status line helper and its wait for a restart.
export function initGB(d) {
  deps = d;
  $('gb-on').addEventListener('change', () => { collectGB(); renderGB(); });
  $('gb-fill').addEventListener('click', fillFromBase);
  $('gb-reset').addEventListener('click', () => { gbmodel = clone(gbform); renderGB(); clearGBProblems(); deps.show($('gb-result'), '', 'result'); });
  $('gb-save').addEventListener('click', saveGB);
}

// loadGB reads the form as the box runs it and starts showing the
// registration.
export async function loadGB() {
  const r = await deps.api('gb28181/config');
  if (r.error) { deps.show($('gb-result'), r.error, 'result bad'); return; }
  delete r.httpStatus;
  gbform = r;
  gbmodel = clone(r);
  renderGB();
  if (!gbpolling) { gbpolling = true; gbLiveLoop(); }
}

// rerenderGB redraws the form in the language chosen.
export function rerenderGB() {
  if (!gbmodel) return;
  collectGB();
  renderGB();
}

async function gbLiveLoop() {
  for (;;) {
    const steps = $('steps');
    if (!steps) return; // the page was closed (finish)
    if (!steps.hidden) {
      let r = null;
      try { r = await deps.api('gb28181/state'); } catch { /* the box is restarting */ }
      if (r && !r.error) { gbstate = r.gb28181; renderGBLive(); }
    }
    await new Promise((res) => setTimeout(res, LIVE_EVERY));
  }
}

// renderGBLive shows the registration: online or not, the last error,
// the platform's clock against the box's.
function renderGBLive() {
  const p = $('gb-live');
  const when = (s) => (s && !s.startsWith('0001-') ? new Date(s).toLocaleString() : '');
  if (gbstate === undefined) { p.textContent = ''; return; }
  if (gbstate === null) {
    p.dataset.state = gbform && gbform.enabled ? 'unknown' : 'off';
    p.className = 'hint';
    p.textContent = t(gbform && gbform.enabled ? 'gb.live.unknown' : 'gb.live.off');
    return;
  }
  const s = gbstate;
  p.dataset.state = s.state;
  p.className = 'gb-live state-' + s.state;
  const parts = [t('gb.live.state', { state: t('gb.state.' + s.state), server: s.server || '' })];
  if (s.online && when(s.registered_since)) parts.push(t('gb.live.since', { time: when(s.registered_since) }));
  if (s.last_error) parts.push(t('gb.live.error', { error: s.last_error, time: when(s.last_error_at) }));
  if (when(s.clock_sampled_at)) {
    const ms = s.clock_offset_ms || 0;
    parts.push(t(ms < 0 ? 'gb.live.clockBehind' : 'gb.live.clockAhead', { offset: (Math.abs(ms) / 1000).toFixed(1) }));
  }
  p.textContent = parts.join(' · ');
}

// idProblem is what is wrong with a channel ID for a device of kind, as
// the box's validation will say it ('' if nothing): 20 digits, the type
// code in digits 11-13, once on the box.
function idProblem(kind, id, used) {
  if (!id) return '';
  if (!/^[0-9]{20}$/.test(id)) return t('gb.bad.length', { n: id.length });
  const code = id.slice(10, 13);
  if (!CODES[kind].includes(code)) return t(kind === 'camera' ? 'gb.bad.camera' : 'gb.bad.alarm', { code });
  if (used > 1) return t('gb.bad.twice');
  return '';
}

function renderGB() {
  const m = gbmodel;
  $('gb-on').checked = !!m.enabled;
  $('gb-form').hidden = !m.enabled;
  $('gb-server-id').value = m.server_id || '';
  $('gb-domain').value = m.server_domain || '';
  $('gb-domain').placeholder = (m.server_id || '').length >= 10 ? m.server_id.slice(0, 10) : '3402000000';
  $('gb-addr').value = m.server_addr || '';
  $('gb-transport').value = m.transport === 'tcp' ? 'tcp' : 'udp';
  $('gb-device-id').value = m.device_id || '';
  $('gb-password').value = m.password || '';
  $('gb-password').placeholder = t(m.has_password ? 'gb.passwordKept' : 'gb.passwordNone');
  $('gb-password').dataset.set = String(!!m.has_password);
  $('gb-keepalive').value = m.keepalive_interval || '';

  const tb = $('gb-channels');
  tb.textContent = '';
  tb.append(el('tr', {}, ...['gb.col.kind', 'gb.col.device', 'gb.col.id', 'gb.col.check'].map((key) => el('th', { text: t(key) }))));
  m.channels.forEach((ch) => {
    const input = el('input', { class: 'gb-id', value: ch.id || '', inputmode: 'numeric', maxlength: '24', size: '22', autocomplete: 'off',
      placeholder: '3402000000' + FILL[ch.kind] + '0000001' });
    input.addEventListener('input', checkIDs);
    tb.append(el('tr', { class: 'gb-row', dataset: { kind: ch.kind, device: ch.device } },
      el('td', { text: t('gb.kind.' + ch.kind) }),
      el('td', { text: ch.name ? `${ch.name} (${ch.device})` : ch.device }),
      el('td', {}, input),
      el('td', { class: 'gb-check' })));
  });
  if (!m.channels.length) tb.append(el('tr', {}, el('td', { colspan: '4', class: 'hint', text: t('gb.noDevices') })));
  checkIDs();
  renderGBLive();
}

// checkIDs shows each row's problem beside its ID as it is typed.
function checkIDs() {
  const rows = [...document.querySelectorAll('#gb-channels .gb-row')];
  const count = {};
  for (const r of rows) {
    const id = r.querySelector('.gb-id').value.trim();
    if (id) count[id] = (count[id] || 0) + 1;
  }
  for (const r of rows) {
    const id = r.querySelector('.gb-id').value.trim();
    const msg = idProblem(r.dataset.kind, id, count[id] || 0);
    const cell = r.querySelector('.gb-check');
    cell.textContent = msg;
    cell.className = 'gb-check' + (msg ? ' error' : '');
    r.querySelector('.gb-id').classList.toggle('suspect', !!msg);
  }
}

// fillFromBase gives every row without an ID the next free one of its
// type from the base ID: its first ten digits, the kind's type code, and
// numbers counted on from the base's last seven digits (cameras and alarm
// inputs each on their own).
function fillFromBase() {
  const base = $('gb-base').value.trim();
  const out = $('gb-fill-problem');
  if (!/^[0-9]{20}$/.test(base)) { out.textContent = t('gb.fillBad'); return; }
  out.textContent = '';
  collectGB();
  const used = new Set(gbmodel.channels.map((ch) => ch.id).filter(Boolean));
  const next = {}; // type code → the next number to try
  for (const ch of gbmodel.channels) {
    if (ch.id) continue;
    const code = FILL[ch.kind];
    let n = next[code] ?? Number(base.slice(13));
    let id = '';
    for (; n <= 9999999; n++) {
      id = base.slice(0, 10) + code + String(n).padStart(7, '0');
      if (!used.has(id)) break;
    }
    if (n > 9999999) break;
    ch.id = id;
    used.add(id);
    next[code] = n + 1;
  }
  renderGB();
}

// collectGB reads the form back into gbmodel; each row with an ID is
// labelled with the field the revision gives it (gb28181.channels[k]).
function collectGB() {
  const m = gbmodel;
  m.enabled = $('gb-on').checked;
  m.server_id = $('gb-server-id').value.trim();
  m.server_domain = $('gb-domain').value.trim();
  m.server_addr = $('gb-addr').value.trim();
  m.transport = $('gb-transport').value;
  m.device_id = $('gb-device-id').value.trim();
  m.password = $('gb-password').value;
  m.keepalive_interval = $('gb-keepalive').value.trim();
  let k = 0;
  m.channels = [...document.querySelectorAll('#gb-channels .gb-row')].map((r, i) => {
    const input = r.querySelector('.gb-id');
    const id = input.value.trim();
    if (id) {
      r.dataset.field = `gb28181.channels[${k}]`;
      input.dataset.field = `gb28181.channels[${k}].id`;
      k++;
    } else {
      delete r.dataset.field;
      delete input.dataset.field;
    }
    return { ...m.channels[i], id };
  });
  return m;
}

function clearGBProblems() {
  $('gb-problems').textContent = '';
  for (const e of document.querySelectorAll('#gb-step .invalid')) { e.classList.remove('invalid'); e.removeAttribute('title'); }
}

// markGB outlines the element of a refused field: the most precise one
// whose data-field the problem's field starts with (the password's file
// is the password field).
function markGB(name, msg) {
  const f = name === 'gb28181.password_file' ? 'gb28181.password' : name;
  let best = null;
  for (const e of document.querySelectorAll('#gb-step [data-field]')) {
    const d = e.dataset.field;
    if ((f === d || f.startsWith(d + '.') || f.startsWith(d + '[')) && (!best || d.length > best.dataset.field.length)) best = e;
  }
  if (best) { best.classList.add('invalid'); best.title = msg; }
}

async function saveGB() {
  clearGBProblems();
  const out = $('gb-result');
  deps.show(out, t('gate.saving'), 'result');
  const body = clone(collectGB());
  delete body.has_password;
  if (!body.password) delete body.password;
  for (const ch of body.channels) delete ch.name;
  const r = await deps.api('gb28181/save', body);
  if (r.error) {
    deps.show(out, t('gb.refused'), 'result bad');
    const probs = r.problems && r.problems.length ? r.problems : [{ field: '', msg: r.error }];
    for (const p of probs) {
      $('gb-problems').append(el('li', { text: p.field ? `${p.field}: ${p.msg}` : p.msg, dataset: { field: p.field } }));
      if (p.field) markGB(p.field, p.msg);
    }
    const first = document.querySelector('#gb-step .invalid');
    if (first) first.scrollIntoView({ block: 'center' });
    return;
  }
  $('gb-password').value = '';
  deps.show(out, t('gate.saved', { rev: r.revision, applied: t('applied.' + r.applied) }) + (r.password_file ? ' ' + t('gb.passwordFile', { file: r.password_file }) : ''), 'result ok');
  out.dataset.revision = r.revision;
  out.dataset.applied = r.applied;
  if (r.applied === 'restarting') await deps.waitForRestart(r.revision);
  else await loadGB();
}
