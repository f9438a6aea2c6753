// Vigil console: login, the alert queue (live from /api/v1/console/ws),
// an alert's detail with its clip and workflow, and the site map.
//
// The queue: a fresh page connects without a cursor and gets a snapshot of
// the open alerts; on any disconnect it reconnects with the last seq it saw
// (?since=), gets every change after it, then {"type":"ready"}, then live
// changes ("alert", "update", "site", "edge"), so nothing is missed and
// nothing shown twice. Alert text is only ever set with textContent or
// attributes, never as HTML. Every string shown comes from i18n.js.
import { t, tEnum, applyI18n, setLang, currentLang, onLangChange } from './i18n.js';
import { api, setUnauthorizedHandler } from './api.js';
import { formatLocal } from './localtime.js';
import { $ } from './shared/dom.js';

const MAX_CARDS = 500;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const SEVERITIES = ['red', 'yellow', 'green'];
const SEV_RANK = { red: 3, yellow: 2, green: 1 };
const WORKFLOW_ROLES = ['guard', 'supervisor', 'admin'];
const WATCH_ROLES = ['guard', 'supervisor', 'police_liaison', 'admin'];
const CLIP_PRE_MS = 10000;  // the edge pins 10 s before …
const CLIP_POST_MS = 30000; // … to 30 s after an alert
const SESSION_PING_MS = 120000;

const views = ['login', 'queue', 'detail', 'sites', 'live', 'evidence', 'audit'];
// Pages in their own modules (evidence.js, audit.js), by role.
const PAGE_ROLES = { evidence: ['supervisor', 'police_liaison', 'admin'], audit: ['supervisor', 'admin'] };
const listEl = $('alerts');
const statusEl = $('status');
const template = $('alert-card');

const state = {
  session: null,       // {user, role}
  ws: null,
  cursor: null,        // last change seq seen; null until the first snapshot
  attempt: 0,
  alerts: new Map(),   // id → record (open alerts, and those opened in detail)
  selected: null,      // id of the selected card
  sites: null,         // GET /api/v1/sites tree
  siteIndex: new Map(),// site id → {node, path}
  detailId: null,
  muted: false,
  connState: 'connecting',
  connReason: '',
};

// ---------- helpers ----------


function setTime(el, iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) {
    el.textContent = String(iso ?? '');
    return;
  }
  el.dateTime = when.toISOString();
  el.textContent = formatLocal(when);
  el.title = t('time.utc', { time: when.toISOString() });
}

function severityOf(a) {
  return SEVERITIES.includes(a.severity) ? a.severity : 'unknown';
}

function canAct() { return state.session && WORKFLOW_ROLES.includes(state.session.role); }
function canWatch() { return state.session && WATCH_ROLES.includes(state.session.role); }

function snapshotURL(u) {
  return typeof u === 'string' && u.startsWith('/api/') ? u : null;
}

// place names an alert's where: village › zone › entrance › camera or gate.
function place(a) {
  const entry = state.siteIndex.get(a.site_id);
  if (!entry) return [a.site_id, a.source].filter(Boolean).join(' › ');
  const dev = [...(entry.node.cameras ?? []), ...(entry.node.gates ?? [])].find((d) => d.id === a.source);
  return [...entry.path.slice(1), (dev && dev.name) || a.source].join(' › ');
}

function cause(a) {
  return tEnum('kind', a.kind);
}

// ---------- views and routing ----------

function show(view) {
  for (const v of views) $(`${v}-view`).hidden = v !== view;
  for (const a of document.querySelectorAll('#nav a[data-view]')) {
    a.classList.toggle('active', a.dataset.view === view || (view === 'detail' && a.dataset.view === 'queue'));
  }
}

function route() {
  if (!state.session) {
    show('login');
    return;
  }
  const h = location.hash;
  if (h.startsWith('#/alert/')) {
    openDetail(decodeURIComponent(h.slice('#/alert/'.length)));
  } else if (h === '#/sites') {
    state.detailId = null;
    show('sites');
    loadSites();
  } else if (h === '#/live') {
    state.detailId = null;
    show('live');
    mountLive();
  } else if ((h === '#/evidence' || h === '#/audit') && PAGE_ROLES[h.slice(2)].includes(state.session.role)) {
    state.detailId = null;
    show(h.slice(2));
    mountPage(h.slice(2));
  } else {
    state.detailId = null;
    show('queue');
  }
}

let liveMounted = false;
async function mountLive() {
  if (liveMounted) return;
  liveMounted = true;
  const view = $('live-view');
  try {
    const mod = await import('./live.js');
    if (typeof mod.mount === 'function') mod.mount(view, { t, tEnum, api, session: state.session, onLangChange });
  } catch (err) {
    const p = document.createElement('p');
    p.className = 'muted';
    p.textContent = t('live.unavailable');
    view.replaceChildren(p);
  }
}

const pagesMounted = new Set();
async function mountPage(name) {
  if (pagesMounted.has(name)) return;
  pagesMounted.add(name);
  const mod = name === 'evidence' ? await import('./evidence.js') : await import('./audit.js');
  mod.mount($(`${name}-view`), { session: state.session });
}

// ---------- login ----------

function renderHeader() {
  const s = state.session;
  $('nav').hidden = !s;
  $('counts').hidden = !s || !canWatch();
  $('mute').hidden = !s || !canWatch();
  $('logout').hidden = !s;
  $('nav-admin').hidden = !s || s.role !== 'admin';
  $('nav-evidence').hidden = !s || !PAGE_ROLES.evidence.includes(s.role);
  $('nav-audit').hidden = !s || !PAGE_ROLES.audit.includes(s.role);
  $('whoami').textContent = s ? t('auth.whoami', { user: s.user, role: tEnum('role', s.role) }) : '';
  $('mute').textContent = state.muted ? t('sound.off') : t('sound.on');
  $('mute').setAttribute('aria-pressed', String(state.muted));
  renderStatus();
}

async function checkSession() {
  try {
    state.session = await api('/api/v1/session');
  } catch {
    state.session = null;
  }
  renderHeader();
  if (state.session) startSession();
  route();
}

function startSession() {
  if (canWatch()) connect();
  loadSites();
}

function signedOut() {
  if (!state.session) return;
  state.session = null;
  if (state.ws) {
    state.ws.onclose = null;
    state.ws.close();
    state.ws = null;
  }
  clearAlerts();
  state.cursor = null;
  pagesMounted.clear(); // the next user gets pages for their role
  renderHeader();
  route();
}
setUnauthorizedHandler(signedOut);

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = $('login-error');
  err.hidden = true;
  unlockAudio();
  try {
    state.session = await api('/api/v1/login', {
      method: 'POST',
      body: { user: $('login-user').value.trim(), password: $('login-password').value },
    });
    $('login-password').value = '';
    renderHeader();
    startSession();
    route();
  } catch (e) {
    err.textContent = e.status === 429 ? t('auth.rate_limited', { seconds: e.retryAfter || 60 })
      : e.status === 401 ? t('auth.wrong') : t('error.generic', { message: e.message });
    err.hidden = false;
  }
});

$('logout').addEventListener('click', async () => {
  try { await api('/api/v1/logout', { method: 'POST' }); } catch { /* gone already */ }
  signedOut();
});

// Keeps the session alive while the console is open.
setInterval(() => { if (state.session) api('/api/v1/session').catch(() => {}); }, SESSION_PING_MS);

// ---------- the queue ----------

function compareAlerts(a, b) {
  const r = (SEV_RANK[b.severity] ?? 0) - (SEV_RANK[a.severity] ?? 0);
  if (r !== 0) return r;
  return new Date(b.time) - new Date(a.time) || b.seq - a.seq;
}

function openAlerts() {
  return [...state.alerts.values()].filter((a) => a.state !== 'resolved').sort(compareAlerts).slice(0, MAX_CARDS);
}

function buildCard(a) {
  const card = template.content.firstElementChild.cloneNode(true);
  applyI18n(card);
  const sev = severityOf(a);
  card.classList.add(`sev-${sev}`);
  card.dataset.alertId = a.id;
  card.dataset.seq = String(a.seq);
  card.dataset.severity = sev;
  card.dataset.kind = a.kind;
  card.dataset.state = a.state || 'raised';
  card.classList.toggle('selected', state.selected === a.id);

  const img = card.querySelector('.snap');
  const url = snapshotURL(a.snapshot_url);
  if (url) {
    img.src = url;
    img.alt = t('card.snapshot_alt', { source: a.source });
    card.querySelector('.nosnap').remove();
  } else {
    img.remove();
  }
  card.querySelector('.sev').textContent = tEnum('sev', sev);
  card.querySelector('.kind').textContent = cause(a);
  const folded = (a.updates ?? []).length;
  if (folded > 0) {
    const f = card.querySelector('.folded');
    f.hidden = false;
    f.textContent = t('card.folded', { count: folded + 1 });
  }
  card.querySelector('.summary').textContent = a.summary;
  card.querySelector('.site').textContent = place(a);
  card.querySelector('.state').textContent = tEnum('state', card.dataset.state);
  setTime(card.querySelector('time'), a.time);
  card.addEventListener('click', () => { location.hash = `#/alert/${encodeURIComponent(a.id)}`; });
  return card;
}

let renderQueued = false;
function renderQueue() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    const list = openAlerts();
    if (state.selected && !list.some((a) => a.id === state.selected)) state.selected = null;
    listEl.replaceChildren(...list.map(buildCard));
    const counts = { red: 0, yellow: 0, green: 0 };
    for (const a of list) if (a.severity in counts) counts[a.severity] += 1;
    for (const s of SEVERITIES) $(`count-${s}`).textContent = String(counts[s]);
    $('empty').hidden = list.length > 0;
    updateAlarm(list);
  });
}

function upsert(a, fresh) {
  const before = state.alerts.get(a.id);
  if (before && before.rev > a.rev) return;
  state.alerts.set(a.id, a);
  if (fresh && a.severity === 'red' && a.state === 'raised' && !before) alarm();
  if (state.detailId === a.id) renderDetail(a);
}

function clearAlerts() {
  state.alerts.clear();
  state.selected = null;
  renderQueue();
}

// ---------- sound and title flash for red ----------

let audio = null;
function unlockAudio() {
  try {
    audio = audio || new AudioContext();
    if (audio.state === 'suspended') audio.resume();
  } catch { audio = null; }
}
document.addEventListener('pointerdown', unlockAudio);
document.addEventListener('keydown', unlockAudio);

// alarm plays two short tones, made here (no sound file to download).
function alarm() {
  if (state.muted || !audio) return;
  const now = audio.currentTime;
  for (const [i, f] of [880, 660].entries()) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = 'square';
    osc.frequency.value = f;
    gain.gain.setValueAtTime(0.0001, now + i * 0.25);
    gain.gain.exponentialRampToValueAtTime(0.2, now + i * 0.25 + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.25 + 0.22);
    osc.connect(gain).connect(audio.destination);
    osc.start(now + i * 0.25);
    osc.stop(now + i * 0.25 + 0.24);
  }
}

let flashTimer = null;
let flashOn = false;
// updateAlarm flashes the title while a red alert waits for acknowledgement.
function updateAlarm(list) {
  const waiting = list.filter((a) => a.severity === 'red' && a.state === 'raised').length;
  document.body.classList.toggle('has-red', waiting > 0);
  if (waiting > 0 && !flashTimer) {
    flashTimer = setInterval(() => {
      flashOn = !flashOn;
      document.title = flashOn ? t('title.red', { count: currentRed() }) : t('app.name');
    }, 800);
  } else if (waiting === 0 && flashTimer) {
    clearInterval(flashTimer);
    flashTimer = null;
    flashOn = false;
    document.title = t('app.name');
  }
}
function currentRed() {
  return [...state.alerts.values()].filter((a) => a.severity === 'red' && a.state === 'raised').length;
}

$('mute').addEventListener('click', () => {
  state.muted = !state.muted;
  try { localStorage.setItem('vigil.muted', state.muted ? '1' : '0'); } catch { /* storage disabled */ }
  renderHeader();
});
try { state.muted = localStorage.getItem('vigil.muted') === '1'; } catch { /* storage disabled */ }

// ---------- keyboard: j/k next/previous, a acknowledge, Enter open ----------

document.addEventListener('keydown', (ev) => {
  if (!state.session || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const tag = (ev.target && ev.target.tagName) || '';
  if (['INPUT', 'TEXTAREA', 'SELECT'].includes(tag)) return;
  if (ev.key === 'Escape' && state.detailId) {
    location.hash = '#/';
    return;
  }
  if ($('queue-view').hidden) return;
  const list = openAlerts();
  if (list.length === 0) return;
  let i = list.findIndex((a) => a.id === state.selected);
  if (ev.key === 'j') i = Math.min(list.length - 1, i + 1);
  else if (ev.key === 'k') i = Math.max(0, i - 1);
  else if (ev.key === 'Enter' && i >= 0) {
    location.hash = `#/alert/${encodeURIComponent(list[i].id)}`;
    return;
  } else if (ev.key === 'a' && i >= 0) {
    if (canAct() && list[i].state === 'raised') act(list[i].id, 'acknowledge', {});
    return;
  } else return;
  ev.preventDefault();
  state.selected = list[Math.max(0, i)].id;
  for (const c of listEl.children) c.classList.toggle('selected', c.dataset.alertId === state.selected);
  const sel = listEl.querySelector('.selected');
  if (sel) {
    sel.focus({ preventScroll: true });
    sel.scrollIntoView({ block: 'nearest' });
  }
});

// ---------- the console feed ----------

function renderStatus() {
  statusEl.dataset.state = state.connState;
  statusEl.textContent = !state.session ? ''
    : state.connState === 'live' ? t('conn.live')
      : state.connState === 'offline' ? t('conn.offline', { reason: state.connReason }) : t('conn.connecting');
}

function setConn(s, reason = '') {
  state.connState = s;
  state.connReason = reason;
  renderStatus();
}

function scheduleReconnect(why) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.attempt);
  const delay = Math.round(base * (0.5 + Math.random() / 2)); // jitter spreads reconnect storms
  state.attempt += 1;
  setConn('offline', why);
  setTimeout(() => { if (state.session && !state.ws) connect(); }, delay);
}

function connect() {
  if (state.ws) return;
  setConn('connecting');
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  // batch=1: a frame may hold several messages, one JSON object per line.
  const query = state.cursor === null ? '?batch=1' : `?since=${state.cursor}&batch=1`;
  const ws = new WebSocket(`${proto}//${location.host}/api/v1/console/ws${query}`);
  state.ws = ws;
  ws.onmessage = (ev) => {
    for (const line of String(ev.data).split('\n')) {
      let msg;
      try { msg = JSON.parse(line); } catch { continue; }
      handle(msg);
    }
    renderQueue();
  };
  ws.onclose = (ev) => {
    state.ws = null;
    if (ev.code === 4401) {
      signedOut();
      return;
    }
    // A refused handshake (401) looks like 1006: ask whether we are still signed in.
    api('/api/v1/session').then(() => scheduleReconnect(ev.reason || `code ${ev.code}`), () => {});
  };
}

function handle(msg) {
  if ((msg.type === 'alert' || msg.type === 'update') && msg.alert && msg.seq > state.cursor) {
    upsert(msg.alert, state.connState === 'live');
    state.cursor = msg.seq;
  } else if (msg.type === 'snapshot') {
    state.alerts.clear();
    for (const a of msg.open ?? []) upsert(a, false);
    state.cursor = msg.seq;
    state.attempt = 0;
    setConn('live');
    siteColours(msg.sites);
  } else if (msg.type === 'ready') {
    state.cursor = msg.seq;
    state.attempt = 0;
    setConn('live');
    siteColours(msg.sites);
  } else if (msg.type === 'site' || msg.type === 'edge') {
    refreshSitesSoon();
  }
}

// ---------- alert detail ----------

async function act(id, action, body) {
  const errEl = $('d-error');
  errEl.hidden = true;
  try {
    const rec = await api(`/api/v1/alerts/${encodeURIComponent(id)}/${action}`, { method: 'POST', body });
    upsert(rec, false);
    renderQueue();
    return true;
  } catch (e) {
    if (e.data && e.data.alert) upsert(e.data.alert, false);
    errEl.textContent = e.status === 409 ? t('action.conflict') : e.status === 403 ? t('action.forbidden') : t('error.generic', { message: e.message });
    errEl.hidden = false;
    renderQueue();
    return false;
  }
}

async function openDetail(id) {
  show('detail');
  if (state.detailId !== id) {
    state.detailId = id;
    $('d-video').removeAttribute('src');
    $('d-video').dataset.clip = '';
    $('d-error').hidden = true;
  }
  let a = state.alerts.get(id);
  try {
    a = await api(`/api/v1/alerts/${encodeURIComponent(id)}`);
    upsert(a, false);
  } catch (e) {
    if (!a) {
      $('d-cause').textContent = t('detail.not_found');
      return;
    }
  }
  if (state.detailId === id) renderDetail(a);
}

// cameraFor picks the camera whose video explains the alert: the cameras
// the edge linked (a gate's cameras), else the source if it is a camera,
// else the entrance's first camera.
function cameraFor(a) {
  if (a.links?.length) return a.links[0].camera;
  const entry = state.siteIndex.get(a.site_id);
  const cams = entry ? (entry.node.cameras ?? []).map((c) => c.id) : [];
  if (cams.includes(a.source) || cams.length === 0) return a.source;
  return cams[0];
}

// playClip loads camera cam's video around alert a: the range the edge
// pinned for it, else 10 s before to 30 s after the event; not past now.
function playClip(a, cam) {
  const at = new Date(a.time).getTime();
  const video = $('d-video');
  if (Number.isNaN(at)) return;
  const link = (a.links ?? []).find((l) => l.camera === cam);
  const from = new Date(link?.clip_from ? new Date(link.clip_from).getTime() : at - CLIP_PRE_MS);
  const to = new Date(Math.min(link?.clip_to ? new Date(link.clip_to).getTime() : at + CLIP_POST_MS, Date.now()));
  video.dataset.clip = `${a.id}/${cam}`;
  video.dataset.to = String(to.getTime());
  video.src = `/api/v1/edges/${encodeURIComponent(a.edge_id)}/cameras/${encodeURIComponent(cam)}/clip?from=${from.toISOString()}&to=${to.toISOString()}`;
  video.dataset.event = String(at);
  $('d-clip-note').textContent = t('detail.clip_range', { camera: cam, from: formatLocal(from), to: formatLocal(to) });
  for (const b of $('d-cams').children) b.setAttribute('aria-pressed', String(b.dataset.camera === cam));
  video.play().catch(() => {});
}

// gateLine says the watched gate's state when a camera alert began.
function gateLine(g) {
  const parts = [g.name || g.gate, tEnum('gate', g.door), g.armed ? t('detail.gate_armed') : t('detail.gate_disarmed')];
  if (g.last_grant) parts.push(t('detail.gate_last_grant', { time: formatLocal(new Date(g.last_grant)), credential: g.last_credential ?? '' }));
  return t('detail.gate_state', { state: parts.join(', ') });
}

function renderDetail(a) {
  const sev = severityOf(a);
  const view = $('detail-view');
  view.dataset.alertId = a.id;
  view.dataset.severity = sev;
  view.dataset.state = a.state;
  $('d-sev').textContent = tEnum('sev', sev);
  $('d-sev').className = `sev sev-${sev}`;
  $('d-cause').textContent = cause(a);
  $('d-state').textContent = tEnum('state', a.state);
  $('d-place').textContent = place(a);
  setTime($('d-time'), a.time);
  $('d-summary').textContent = a.summary;

  // Every picture: the alert's and those its updates brought (a gate's cameras).
  const snaps = [];
  const main = snapshotURL(a.snapshot_url);
  if (main) snaps.push({ url: main, at: a.snapshot_time || a.time });
  for (const u of a.updates ?? []) {
    const url = snapshotURL(u.snapshot_url);
    if (url) snaps.push({ url, at: u.snapshot_time || u.time });
  }
  const box = $('d-snaps');
  if (box.dataset.key !== snaps.map((s) => s.url).join('|')) {
    box.dataset.key = snaps.map((s) => s.url).join('|');
    box.replaceChildren(...snaps.map((s) => {
      const fig = document.createElement('figure');
      const img = document.createElement('img');
      img.src = s.url;
      img.alt = t('card.snapshot_alt', { source: a.source });
      img.dataset.testid = 'detail-snapshot';
      img.setAttribute('data-testid', 'detail-snapshot');
      const cap = document.createElement('figcaption');
      const tm = document.createElement('time');
      setTime(tm, s.at);
      cap.append(tm);
      fig.append(img, cap);
      return fig;
    }));
    if (snaps.length === 0) {
      const p = document.createElement('p');
      p.className = 'muted';
      p.textContent = t('card.no_picture');
      box.append(p);
    }
  }

  // The pinned clip of each linked camera, the first one playing.
  const cams = a.links?.length ? a.links.map((l) => l.camera) : [cameraFor(a)];
  const camBox = $('d-cams');
  if (camBox.dataset.key !== `${a.id}:${cams.join('|')}`) {
    camBox.dataset.key = `${a.id}:${cams.join('|')}`;
    camBox.replaceChildren(...(cams.length > 1 ? cams : []).map((cam) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = cam;
      b.dataset.camera = cam;
      b.setAttribute('data-testid', 'clip-camera');
      b.addEventListener('click', () => playClip(a, cam));
      return b;
    }));
  }
  if (!$('d-video').dataset.clip?.startsWith(`${a.id}/`)) playClip(a, cams[0]);
  $('d-gatestate').hidden = !a.gate;
  if (a.gate) $('d-gatestate').textContent = gateLine(a.gate);

  // Who did what, when.
  $('d-history').replaceChildren(...(a.history ?? []).map((st) => {
    const li = document.createElement('li');
    li.dataset.testid = 'history-step';
    li.setAttribute('data-testid', 'history-step');
    li.dataset.state = st.state;
    const what = document.createElement('strong');
    what.textContent = tEnum('state', st.state);
    const who = document.createElement('span');
    who.textContent = ` ${st.actor ? t('history.by', { actor: st.actor }) : ''} `;
    const tm = document.createElement('time');
    setTime(tm, st.at);
    li.append(what, who, tm);
    if (st.to) {
      const p = document.createElement('div');
      p.textContent = t('history.to', { to: st.to });
      li.append(p);
    }
    if (st.note) {
      const p = document.createElement('div');
      p.className = 'note';
      p.textContent = t('history.note', { note: st.note });
      li.append(p);
    }
    return li;
  }));

  // Buttons for what this role may do next; none for read-only roles.
  const actions = $('d-actions');
  actions.hidden = !canAct() || a.state === 'resolved';
  $('d-readonly').hidden = canAct();
  if (canAct()) {
    $('btn-ack').hidden = a.state !== 'raised';
    $('form-dispatch').hidden = !['acknowledged', 'dispatched'].includes(a.state);
    $('form-resolve').hidden = a.state === 'resolved';
  } else {
    // Read-only: the workflow controls are not in the page at all.
    actions.hidden = true;
  }
  loadGateHistory(a);
}

// The gate's state history around the alert, from the edge's events.
async function loadGateHistory(a) {
  const entry = state.siteIndex.get(a.site_id);
  const isGate = a.kind.startsWith('gate') || (entry && (entry.node.gates ?? []).some((g) => g.id === a.source));
  const box = $('d-gate');
  if (!isGate) {
    box.hidden = true;
    return;
  }
  const at = new Date(a.time).getTime();
  const from = new Date(at - 10 * 60000).toISOString();
  const to = new Date(at + 10 * 60000).toISOString();
  try {
    const res = await api(`/api/v1/events?edge=${encodeURIComponent(a.edge_id)}&from=${from}&to=${to}&limit=200`);
    const events = (res.events ?? []).filter((e) => e.source === a.source);
    if (state.detailId !== a.id) return;
    box.hidden = false;
    const items = events.map((e) => {
      const li = document.createElement('li');
      li.dataset.kind = e.kind;
      const tm = document.createElement('time');
      setTime(tm, e.time);
      const k = document.createElement('span');
      k.textContent = ` ${tEnum('event', e.kind)}`;
      li.append(tm, k);
      if (Math.abs(new Date(e.time).getTime() - at) < 1000) li.classList.add('at-event');
      return li;
    });
    if (items.length === 0) {
      const li = document.createElement('li');
      li.className = 'muted';
      li.textContent = t('detail.no_gate_events');
      items.push(li);
    }
    $('d-gate-list').replaceChildren(...items);
  } catch {
    box.hidden = true;
  }
}

// The timeline under the video: progress, and a marker at the event.
function drawTimeline() {
  const video = $('d-video');
  const d = video.duration;
  if (!Number.isFinite(d) || d <= 0) return;
  // Measured from the clip's end (what was recorded up to `to`): its start
  // moves back to a keyframe, or forward if recording began later.
  const offset = d - (Number(video.dataset.to) - Number(video.dataset.event)) / 1000;
  $('d-marker').style.left = `${Math.max(0, Math.min(100, (offset / d) * 100))}%`;
  $('d-progress').style.width = `${(video.currentTime / d) * 100}%`;
}
$('d-video').addEventListener('loadedmetadata', drawTimeline);
$('d-video').addEventListener('timeupdate', drawTimeline);
$('d-video').addEventListener('error', () => { $('d-clip-note').textContent = t('detail.clip_unavailable'); });
$('d-timeline').addEventListener('click', (ev) => {
  const video = $('d-video');
  const r = ev.currentTarget.getBoundingClientRect();
  if (Number.isFinite(video.duration)) video.currentTime = ((ev.clientX - r.left) / r.width) * video.duration;
});

$('btn-ack').addEventListener('click', () => act(state.detailId, 'acknowledge', {}));
$('form-dispatch').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const to = $('dispatch-to').value.trim();
  if (!to) return;
  if (await act(state.detailId, 'dispatch', { to })) $('dispatch-to').value = '';
});
$('form-resolve').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const note = $('resolve-note').value.trim();
  if (!note) {
    $('d-error').textContent = t('action.note_required');
    $('d-error').hidden = false;
    return;
  }
  if (await act(state.detailId, 'resolve', { note })) $('resolve-note').value = '';
});

// ---------- site map ----------

function indexSites(node, path) {
  const p = [...path, node.name || node.id];
  state.siteIndex.set(node.id, { node, path: p });
  for (const c of node.children ?? []) indexSites(c, p);
}

async function loadSites() {
  try {
    const res = await api('/api/v1/sites');
    state.sites = res;
    state.siteIndex.clear();
    for (const n of rootsOf(res)) indexSites(n, []);
    renderSites();
    renderQueue();
    if (state.detailId && state.alerts.has(state.detailId)) $('d-place').textContent = place(state.alerts.get(state.detailId));
  } catch { /* shown as empty */ }
}

function rootsOf(res) {
  if (!res) return [];
  if (Array.isArray(res)) return res;
  if (Array.isArray(res.sites)) return res.sites;
  if (res.township) return [res.township];
  return res.id ? [res] : [];
}

let sitesTimer = null;
function refreshSitesSoon() {
  if (sitesTimer) return;
  sitesTimer = setTimeout(() => { sitesTimer = null; loadSites(); }, 300);
}
setInterval(() => { if (state.session && !$('sites-view').hidden) loadSites(); }, 10000);

function siteColours(list) {
  if (!Array.isArray(list) || list.length === 0) return;
  refreshSitesSoon();
}

function dot(online) {
  const s = document.createElement('span');
  s.className = `dot ${online ? 'on' : 'off'}`;
  s.textContent = online ? t('sites.online') : t('sites.offline');
  return s;
}

function renderSites() {
  const roots = rootsOf(state.sites);
  const tree = $('site-tree');
  const grid = $('site-grid');
  const entrances = [];
  const build = (n) => {
    const li = document.createElement('li');
    const label = document.createElement('span');
    label.className = `node sev-${n.colour || 'green'}`;
    label.dataset.testid = 'site-node';
    label.setAttribute('data-testid', 'site-node');
    label.dataset.siteId = n.id;
    label.dataset.colour = n.colour || 'green';
    label.textContent = `${n.name || n.id} · ${tEnum('level', n.level)}`;
    li.append(label);
    if (n.level === 'entrance') entrances.push(n);
    if ((n.children ?? []).length) {
      const ul = document.createElement('ul');
      ul.append(...n.children.map(build));
      li.append(ul);
    }
    return li;
  };
  tree.replaceChildren(...roots.map(build));
  grid.replaceChildren(...entrances.map((n) => {
    const tile = document.createElement('div');
    const colour = n.colour || 'green';
    tile.className = `tile sev-${colour}`;
    tile.setAttribute('data-testid', 'site-tile');
    tile.dataset.siteId = n.id;
    tile.dataset.colour = colour;
    const h = document.createElement('h4');
    h.textContent = state.siteIndex.get(n.id)?.path.slice(1).join(' › ') || n.name;
    const c = document.createElement('p');
    c.className = 'tile-colour';
    const open = n.open || {};
    c.textContent = t('sites.open', { red: open.red ?? 0, yellow: open.yellow ?? 0, green: open.green ?? 0 });
    tile.append(h, c);
    const list = document.createElement('ul');
    for (const e of n.edges ?? []) {
      const li = document.createElement('li');
      li.append(`${t('sites.edge')} ${e.id} `, dot(e.online && !e.revoked));
      list.append(li);
    }
    for (const cam of n.cameras ?? []) {
      const li = document.createElement('li');
      const on = cam.online ?? (cam.state ? cam.state === 'ok' || cam.state === 'online' : undefined);
      li.append(`${t('sites.camera')} ${cam.name || cam.id} `);
      if (on !== undefined) li.append(dot(on));
      list.append(li);
    }
    for (const g of n.gates ?? []) {
      const li = document.createElement('li');
      li.append(`${t('sites.gate')} ${g.name || g.id} `);
      if (g.state) {
        const s = document.createElement('span');
        s.className = 'muted';
        s.textContent = tEnum('gate', g.state);
        li.append(s);
      }
      list.append(li);
    }
    tile.append(list);
    return tile;
  }));
  if (entrances.length === 0) {
    const p = document.createElement('p');
    p.className = 'muted';
    p.textContent = t('sites.none');
    grid.append(p);
  }
}

// ---------- start ----------

const langSel = $('lang');
langSel.value = currentLang();
langSel.addEventListener('change', () => setLang(langSel.value));
onLangChange(() => {
  langSel.value = currentLang();
  renderHeader();
  renderQueue();
  if (state.sites) renderSites();
  if (state.detailId && state.alerts.has(state.detailId)) renderDetail(state.alerts.get(state.detailId));
  document.title = t('app.name');
});
window.addEventListener('hashchange', route);
applyI18n(document);
document.title = t('app.name');
renderHeader();
checkSession();
