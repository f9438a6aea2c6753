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
import { storedNumber, siteRoots } from './common.js';
import { api, setUnauthorizedHandler } from './api.js';
import { formatLocal } from './localtime.js';
import { $, el } from './shared/dom.js';
import { cause, summary, extras, gateDoor, updateLine, perimeterFacts } from './describe.js';
import { createAlarm } from './alarm.js';
import { renderSensorAlert, sensorThumb, fmtValue } from './sensorchart.js';

// The queue shows the first PAGE_CARDS cards in priority order and says
// how many more there are ("N more — show"); nothing is dropped silently.
const PAGE_CARDS = storedNumber('vigil.queue.page', 50);
const FLASH_MS = 6000;
const CLIP_GROW_MS = 4000; // re-ask for the clip while its post-roll is still being recorded
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const SEVERITIES = ['red', 'yellow', 'green'];
const SEV_RANK = { red: 3, yellow: 2, green: 1 };
const WORKFLOW_ROLES = ['guard', 'supervisor', 'admin'];
const WATCH_ROLES = ['guard', 'supervisor', 'police_liaison', 'admin'];
const CLIP_PRE_MS = 10000;  // the edge pins 10 s before …
const CLIP_POST_MS = 30000; // … to 30 s after an alert
const SESSION_PING_MS = 120000;

const views = ['login', 'queue', 'detail', 'sites', 'live', 'evidence', 'audit', 'report', 'fleet', 'history', 'playback', 'sensors'];
// Pages in their own modules (evidence.js, audit.js, report.js, fleet.js,
// history.js, playback.js), by role.
const PAGE_ROLES = {
  evidence: ['supervisor', 'police_liaison', 'admin'],
  audit: ['supervisor', 'admin'],
  report: ['guard', 'supervisor', 'admin'],
  fleet: ['installer', 'admin'],
  history: WATCH_ROLES,
  playback: WATCH_ROLES,
  sensors: ['guard', 'supervisor', 'police_liaison', 'installer', 'admin'], // sensors.js
};
const PAGE_MODULES = { evidence: './evidence.js', audit: './audit.js', report: './report.js', fleet: './fleet.js',
  history: './history.js', playback: './playback.js', sensors: './sensors.js' };
const PLAYBACK_PRE_MS = 20000; // "open in playback" starts this long before the alert
const PLAYBACK_MAX_CAMERAS = 9;
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
  sensors: [],         // GET /api/v1/sensors, for the site map
  siteIndex: new Map(),// site id → {node, path}
  detailId: null,
  shown: PAGE_CARDS,   // how many cards the queue shows
  flash: new Map(),    // id → until (ms): cards that just raised attention
  connState: 'connecting',
  connReason: '',
};

let alarm = null; // alarm.js, made once the page's helpers exist

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
  return [...entry.path.slice(1), (dev && dev.name) || a.sensor?.name || a.source].join(' › ');
}

// deviceName is the source's name from the site map, else its ID.
function deviceName(a) {
  const entry = state.siteIndex.get(a.site_id);
  if (!entry) return a.sensor?.name || a.source;
  const dev = [...(entry.node.cameras ?? []), ...(entry.node.gates ?? [])].find((d) => d.id === a.source);
  return (dev && dev.name) || a.sensor?.name || a.source; // a sensor's name comes with its alert
}

function mayOpen(page) { return !!state.session && (PAGE_ROLES[page] ?? []).includes(state.session.role); }

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
  if (h.startsWith('#/alert/') && canWatch()) {
    openDetail(decodeURIComponent(h.slice('#/alert/'.length)));
  } else if (h === '#/sites') {
    state.detailId = null;
    show('sites');
    loadSites();
  } else if (h === '#/live') {
    state.detailId = null;
    show('live');
    mountLive();
  } else if (h.startsWith('#/playback') && mayOpen('playback')) {
    // The page reads its cameras and moment from the address itself.
    state.detailId = null;
    show('playback');
    mountPage('playback');
  } else if (Object.hasOwn(PAGE_ROLES, pageOf(h)) && mayOpen(pageOf(h))) {
    // A page may read more from its address (#/sensors?sensor=…).
    state.detailId = null;
    show(pageOf(h));
    mountPage(pageOf(h));
  } else if (!canWatch()) {
    // Installers have no alert queue: their start page is the fleet.
    state.detailId = null;
    if (mayOpen('fleet')) {
      show('fleet');
      mountPage('fleet');
    } else {
      show('sites');
      loadSites();
    }
  } else {
    state.detailId = null;
    show('queue');
  }
}

// pageOf is the page an address names, without its query (#/sensors?sensor=E/S → sensors).
function pageOf(hash) { return hash.slice(2).split('?')[0]; }

let liveMounted = false;
async function mountLive() {
  if (liveMounted) return;
  liveMounted = true;
  const view = $('live-view');
  try {
    const mod = await import('./live.js');
    if (typeof mod.mount === 'function') mod.mount(view, { t, tEnum, api, session: state.session, onLangChange, alertsFor });
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
  try {
    const mod = await import(PAGE_MODULES[name]);
    mod.mount($(`${name}-view`), { session: state.session, place: (id) => state.siteIndex.get(id),
      placeOf: place, nameOf: deviceName, playbackHash });
  } catch (err) {
    pagesMounted.delete(name);
    $(`${name}-view`).replaceChildren(el('p', { class: 'error', text: t('error.generic', { message: err.message }) }));
  }
}

// ---------- login ----------

function renderHeader() {
  const s = state.session;
  $('nav').hidden = !s;
  $('counts').hidden = !s || !canWatch();
  $('logout').hidden = !s;
  $('nav-queue').hidden = !s || !canWatch();
  $('nav-admin').hidden = !s || s.role !== 'admin';
  for (const p of Object.keys(PAGE_ROLES)) $(`nav-${p}`).hidden = !mayOpen(p);
  $('whoami').textContent = s ? t('auth.whoami', { user: s.user, role: tEnum('role', s.role) }) : '';
  renderStatus();
  if (alarm) alarm.render();
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
  for (const p of Object.keys(PAGE_ROLES)) $(`${p}-view`).replaceChildren();
  renderHeader();
  route();
}
setUnauthorizedHandler(signedOut);

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = $('login-error');
  err.hidden = true;
  alarm.unlock();
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

// The queue's order: open before resolved, then colour, then priority
// (1 most urgent; an alert without one after those with one), then the
// newest (its last occurrence) first.
function lastTime(a) { return new Date(a.last_time || a.time).getTime() || 0; }
function priorityOf(a) { return Number.isFinite(Number(a.priority)) && a.priority !== null && a.priority !== undefined ? Number(a.priority) : 1e9; }
function compareAlerts(a, b) {
  const o = Number(a.state === 'resolved') - Number(b.state === 'resolved');
  if (o !== 0) return o;
  const r = (SEV_RANK[b.severity] ?? 0) - (SEV_RANK[a.severity] ?? 0);
  if (r !== 0) return r;
  const p = priorityOf(a) - priorityOf(b);
  if (p !== 0) return p;
  return lastTime(b) - lastTime(a) || b.seq - a.seq;
}

// openAlerts is every open alert, most urgent first (the cards show the
// first state.shown of them).
function openAlerts() {
  return [...state.alerts.values()].filter((a) => a.state !== 'resolved').sort(compareAlerts);
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
  card.dataset.priority = a.priority ?? '';
  card.dataset.count = String(a.count ?? 1);
  if (a.escalated_at) card.dataset.escalated = 'true';
  if (a.follows) card.dataset.follows = a.follows;
  card.classList.toggle('selected', state.selected === a.id);
  card.classList.toggle('escalated', !!a.escalated_at);
  card.classList.toggle('flash', (state.flash.get(a.id) ?? 0) > Date.now());

  const img = card.querySelector('.snap');
  const url = snapshotURL(a.snapshot_url);
  if (url) {
    img.src = url;
    img.alt = t('card.snapshot_alt', { source: deviceName(a) });
    card.querySelector('.nosnap').remove();
  } else {
    img.remove();
    // A sensor has no picture: its reading against the threshold and a
    // sparkline of the minutes before instead.
    if (a.sensor) card.querySelector('.nosnap').replaceWith(sensorThumb(a, 'card'));
  }
  card.querySelector('.sev').textContent = tEnum('sev', sev);
  card.querySelector('.kind').textContent = cause(a);
  // How many times: central's count, else the alert and its updates.
  const times = Number(a.count) > 0 ? Number(a.count) : (a.updates ?? []).length + 1;
  if (times > 1) {
    const f = card.querySelector('.folded');
    f.hidden = false;
    f.textContent = t('card.folded', { count: times });
  }
  card.querySelector('.summary').textContent = summary(a, deviceName(a));
  const marks = card.querySelector('.marks');
  if (a.escalated_at) marks.append(el('span', { class: 'badge escalated', 'data-testid': 'alert-escalated', text: t('card.escalated') }));
  if (a.follows) marks.append(el('span', { class: 'badge again', 'data-testid': 'alert-follows', text: t('sum.follows') }));
  card.querySelector('.site').textContent = place(a);
  card.querySelector('.state').textContent = tEnum('state', card.dataset.state);
  setTime(card.querySelector('time'), a.last_time || a.time);
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
    const shown = list.slice(0, state.shown);
    listEl.replaceChildren(...shown.map(buildCard));
    const rest = list.length - shown.length;
    $('queue-more').hidden = rest <= 0;
    $('queue-more-text').textContent = t('queue.more', { count: rest });
    const counts = { red: 0, yellow: 0, green: 0 };
    for (const a of list) if (a.severity in counts) counts[a.severity] += 1;
    for (const s of SEVERITIES) $(`count-${s}`).textContent = String(counts[s]);
    $('empty').hidden = list.length > 0;
    listEl.dataset.total = String(list.length);
    updateAlarm(list);
    if (alarm) alarm.update(list);
    if (state.toTop && !$('queue-view').hidden) {
      // A new most-urgent alert is never below the fold.
      const first = listEl.firstElementChild;
      if (first && first.dataset.alertId === state.toTop) window.scrollTo({ top: 0 });
    }
    state.toTop = null;
  });
}

$('queue-more-btn').addEventListener('click', () => {
  state.shown += PAGE_CARDS * 4;
  renderQueue();
});

// raiseAttention flashes a card that is new or came again, moves the view
// to it if it is now the most urgent, and sounds the alarm for red.
function raiseAttention(a) {
  state.flash.set(a.id, Date.now() + FLASH_MS);
  setTimeout(() => { if ((state.flash.get(a.id) ?? 0) <= Date.now()) { state.flash.delete(a.id); renderQueue(); } }, FLASH_MS + 50);
  const top = openAlerts()[0];
  if (top && top.id === a.id) state.toTop = a.id;
  alarm.attention(a);
}

function upsert(a, fresh) {
  const before = state.alerts.get(a.id);
  if (before && before.rev > a.rev) return;
  state.alerts.set(a.id, a);
  if (fresh && a.state !== 'resolved') {
    const again = before && Number(a.count ?? 1) > Number(before.count ?? 1);
    const escalated = before && a.escalated_at && !before.escalated_at;
    if (!before || again || escalated || (before.severity !== a.severity && a.severity === 'red')) raiseAttention(a);
  }
  if (state.detailId === a.id) renderDetail(a);
}

function clearAlerts() {
  state.alerts.clear();
  state.selected = null;
  renderQueue();
}

// ---------- the alarm (alarm.js) and the title flash for red ----------

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

alarm = createAlarm({
  session: () => state.session,
  canAct,
  canWatch,
  act: (id, action) => act(id, action, {}),
  open: (id) => { location.hash = `#/alert/${encodeURIComponent(id)}`; },
  name: deviceName,
  place,
  cameraFor,
  snapshotURL,
  drawBoxes,
});

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
  const list = openAlerts().slice(0, state.shown); // the cards on the page
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
  // Roles without the alert feed (installers) have no connection to show.
  statusEl.hidden = !state.session || !canWatch();
  statusEl.dataset.state = state.connState;
  statusEl.textContent = !state.session || !canWatch() ? ''
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
    refreshSitesSoon(); // the map's colours and gate states follow every change
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
  } else if (msg.type === 'mute') {
    alarm.setMute(msg.mute ?? msg);
  }
  if (msg.mute && msg.type !== 'mute') alarm.setMute(msg.mute);
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
  alarm.opened(id);
  if (state.detailId !== id) {
    state.detailId = id;
    clearTimeout(clipTimer);
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

// alertsFor is the open alerts of one camera (its source or a linked
// camera), for the live wall's tiles.
function alertsFor(edge, camera) {
  return openAlerts().filter((a) => a.edge_id === edge && (a.source === camera || (a.links ?? []).some((l) => l.camera === camera)));
}

// playbackCameras are the cameras that show an alert: its source when
// that is a camera, and the cameras the edge linked to it (a gate's).
function playbackCameras(a) {
  const entry = state.siteIndex.get(a.site_id);
  const siteCams = entry ? (entry.node.cameras ?? []).map((c) => c.id) : [];
  const isCamera = siteCams.includes(a.source) || /^(motion|tamper|perimeter|camera)/.test(a.kind || '');
  const cams = [...new Set([...(isCamera ? [a.source] : []), ...(a.links ?? []).map((l) => l.camera)])];
  if (cams.length === 0) cams.push(cameraFor(a));
  return cams.filter(Boolean).slice(0, PLAYBACK_MAX_CAMERAS).map((c) => `${a.edge_id}/${c}`);
}

// playbackHash is "open in playback" for an alert: its cameras, from
// PLAYBACK_PRE_MS before it.
function playbackHash(a) {
  const at = new Date(a.time).getTime() - PLAYBACK_PRE_MS;
  const cams = playbackCameras(a);
  return `#/playback?cams=${cams.map(encodeURIComponent).join(',')}&at=${encodeURIComponent(new Date(at).toISOString())}`;
}

$('d-playback').addEventListener('click', () => {
  const a = state.alerts.get(state.detailId);
  if (!a) return;
  window.vigilPlaybackClickAt = performance.now(); // playback.js measures its first frame from here
  location.hash = playbackHash(a);
});

let clipTimer = null;

// playClip loads camera cam's video around alert a: the range the edge
// pinned for it, else 10 s before to 30 s after the event; not past now.
function playClip(a, cam) {
  const at = new Date(a.time).getTime();
  const video = $('d-video');
  if (Number.isNaN(at)) return;
  const link = (a.links ?? []).find((l) => l.camera === cam);
  const from = new Date(link?.clip_from ? new Date(link.clip_from).getTime() : at - CLIP_PRE_MS);
  const end = link?.clip_to ? new Date(link.clip_to).getTime() : at + CLIP_POST_MS;
  const to = new Date(Math.min(end, Date.now()));
  const again = video.dataset.clip === `${a.id}/${cam}`;
  const resumeAt = again ? video.currentTime : 0;
  const wasPaused = again && video.paused && !video.ended;
  video.dataset.clip = `${a.id}/${cam}`;
  // The post-roll is still being recorded: ask again for the longer clip
  // until it ends, carrying on from where the guard was.
  clearTimeout(clipTimer);
  video.dataset.growing = String(end > to.getTime());
  if (end > to.getTime()) {
    // Reloaded only when the player nears what it has (no stutter while
    // the guard watches the part already recorded).
    const grow = () => {
      if (state.detailId !== a.id || video.dataset.clip !== `${a.id}/${cam}`) return;
      const left = video.duration - video.currentTime;
      if (video.ended || !Number.isFinite(left) || left < 3) playClip(state.alerts.get(a.id) || a, cam);
      else clipTimer = setTimeout(grow, 1000);
    };
    clipTimer = setTimeout(grow, CLIP_GROW_MS);
  }
  if (resumeAt > 0) video.addEventListener('loadedmetadata', () => { video.currentTime = Math.min(resumeAt, video.duration || resumeAt); }, { once: true });
  video.dataset.to = String(to.getTime());
  video.src = `/api/v1/edges/${encodeURIComponent(a.edge_id)}/cameras/${encodeURIComponent(cam)}/clip?from=${from.toISOString()}&to=${to.toISOString()}`;
  video.dataset.event = String(at);
  $('d-clip-note').textContent = t('detail.clip_range', { camera: cam, from: formatLocal(from), to: formatLocal(to) });
  for (const b of $('d-cams').children) b.setAttribute('aria-pressed', String(b.dataset.camera === cam));
  if (!wasPaused) video.play().catch(() => {});
}

// gateLine says the watched gate's state when a camera alert began.
function gateLine(g) {
  const parts = [g.name || g.gate, gateDoor(g.door), g.armed ? t('detail.gate_armed') : t('detail.gate_disarmed')];
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
  $('d-summary').textContent = summary(a, deviceName(a));
  const ex = extras(a);
  $('d-extras').hidden = ex.length === 0;
  $('d-extras').textContent = ex.join(' · ');
  view.dataset.escalated = a.escalated_at ? 'true' : 'false';
  $('d-follows').hidden = !a.follows;
  if (a.follows) {
    $('d-follows-link').href = `#/alert/${encodeURIComponent(a.follows)}`;
    $('d-follows-link').textContent = t('detail.follows_link', { id: a.follows });
  }

  // Every picture: the alert's and those its updates brought (a gate's cameras).
  const snaps = [];
  const main = snapshotURL(a.snapshot_url);
  if (main) snaps.push({ url: main, at: a.snapshot_time || a.time, boxes: a.boxes, path: a.path, camera: cameraFor(a) });
  for (const u of a.updates ?? []) {
    const url = snapshotURL(u.snapshot_url);
    if (url) snaps.push({ url, at: u.snapshot_time || u.time, boxes: u.boxes, camera: u.camera || a.source, line: updateLine(u) });
  }
  state.boxTimes = snaps.filter((x) => x.boxes?.length).map((x) => ({ at: new Date(x.at).getTime(), camera: x.camera, n: x.boxes.length }));
  const box = $('d-snaps');
  const snapKey = (a.sensor ? 'sensor|' : '') + snaps.map((s) => s.url).join('|');
  if (box.dataset.key !== snapKey) {
    box.dataset.key = snapKey;
    box.replaceChildren(...snaps.map((s) => {
      const fig = document.createElement('figure');
      const pic = el('div', { class: 'pic' });
      const img = document.createElement('img');
      img.src = s.url;
      img.alt = t('card.snapshot_alt', { source: deviceName(a) });
      img.setAttribute('data-testid', 'detail-snapshot');
      pic.append(img);
      drawBoxes(pic, s.boxes, s.path);
      const cap = document.createElement('figcaption');
      const tm = document.createElement('time');
      setTime(tm, s.at);
      cap.append(tm);
      if (s.line) cap.append(` ${s.line}`);
      fig.append(pic, cap);
      return fig;
    }));
    if (snaps.length === 0 && !a.sensor) { // a sensor's reading and chart are above (d-sensor)
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
  const noMedia = !!a.sensor && snaps.length === 0; // a sensor alert: no camera, no clip
  if (noMedia) $('d-video').pause();
  else if (!$('d-video').dataset.clip?.startsWith(`${a.id}/`)) playClip(a, cams[0]);
  $('d-gatestate').hidden = !a.gate;
  if (a.gate) $('d-gatestate').textContent = gateLine(a.gate);
  const facts = perimeterFacts(a);
  $('d-perimeter').hidden = !facts;
  $('d-perimeter').textContent = facts;
  // A sensor alert: its reading, rule and a chart of the minutes before it.
  $('d-sensor').hidden = !a.sensor;
  // A sensor alert has no pictures or clip of its own: its reading and
  // chart stand in their place.
  $('d-media').hidden = noMedia;
  if (a.sensor) renderSensorAlert($('d-sensor'), a).catch(() => {});

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
  // Where the pictures with motion boxes were taken, on this camera's clip.
  const cam = (video.dataset.clip || '').split('/').slice(1).join('/');
  const marks = (state.boxTimes ?? []).filter((b) => !b.camera || b.camera === cam);
  const tl = $('d-timeline');
  for (const m of tl.querySelectorAll('.box-mark')) m.remove();
  for (const b of marks) {
    const off = d - (Number(video.dataset.to) - b.at) / 1000;
    if (!Number.isFinite(off)) continue;
    const m = el('div', { class: 'box-mark', 'data-testid': 'timeline-box', title: t('detail.boxes_marker', { count: b.n }) });
    m.style.left = `${Math.max(0, Math.min(100, (off / d) * 100))}%`;
    tl.append(m);
  }
}

// drawBoxes lays an SVG over a picture's container with one rectangle per
// motion box (wire.Box: x, y, w, h in 0..1 of the picture's width and
// height, from its top left) and, for a perimeter alert, the object's path
// (wire.Point: x, y in 0..1) ending in a dot where it crossed or stayed.
function drawBoxes(container, boxes, path) {
  for (const old of container.querySelectorAll('svg.boxes')) old.remove();
  const hasBoxes = Array.isArray(boxes) && boxes.length > 0;
  const hasPath = Array.isArray(path) && path.length > 0;
  if (!hasBoxes && !hasPath) return;
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('class', 'boxes');
  svg.setAttribute('data-testid', 'motion-boxes');
  svg.setAttribute('viewBox', '0 0 1 1');
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('aria-hidden', 'true');
  if (hasPath) drawPath(svg, path);
  for (const b of hasBoxes ? boxes : []) {
    const r = document.createElementNS(NS, 'rect');
    r.setAttribute('x', String(Number(b.x) || 0));
    r.setAttribute('y', String(Number(b.y) || 0));
    r.setAttribute('width', String(Number(b.w) || 0));
    r.setAttribute('height', String(Number(b.h) || 0));
    r.setAttribute('vector-effect', 'non-scaling-stroke');
    r.setAttribute('data-testid', 'motion-box');
    svg.append(r);
  }
  container.classList.add('has-boxes');
  container.append(svg);
}

// drawPath adds a perimeter alert's path to drawBoxes' SVG: a polyline
// through its points and a dot at its last (where the object is).
function drawPath(svg, path) {
  const NS = 'http://www.w3.org/2000/svg';
  const pts = path.map((p) => [Number(p.x) || 0, Number(p.y) || 0]);
  const line = document.createElementNS(NS, 'polyline');
  line.setAttribute('points', pts.map(([x, y]) => `${x},${y}`).join(' '));
  line.setAttribute('vector-effect', 'non-scaling-stroke');
  line.setAttribute('data-testid', 'perimeter-path');
  const [ex, ey] = pts[pts.length - 1];
  const end = document.createElementNS(NS, 'ellipse');
  end.setAttribute('cx', String(ex));
  end.setAttribute('cy', String(ey));
  end.setAttribute('rx', '0.008');
  end.setAttribute('ry', '0.012');
  end.setAttribute('class', 'path-end');
  svg.append(line, end);
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
    const [res, sensors] = await Promise.all([api('/api/v1/sites'), loadSensors()]);
    state.sites = res;
    state.sensors = sensors;
    state.siteIndex.clear();
    for (const n of siteRoots(res)) indexSites(n, []);
    renderSites();
    renderQueue();
    if (state.detailId && state.alerts.has(state.detailId)) $('d-place').textContent = place(state.alerts.get(state.detailId));
  } catch { /* shown as empty */ }
}

// loadSensors is every sensor with its state from its edge's latest
// heartbeat (GET /api/v1/sensors), for the site map; [] when it fails.
async function loadSensors() {
  if (!mayOpen('sensors')) return [];
  try { return (await api('/api/v1/sensors'))?.sensors ?? []; } catch { return []; }
}

// sensorHome is where a sensor goes on the map: its site, else the
// nearest site above it the tree knows (village-9/lane-3 → village-9),
// else its site ID as it is.
function sensorHome(siteID) {
  for (let id = siteID || ''; id; id = id.includes('/') ? id.slice(0, id.lastIndexOf('/')) : '') {
    if (state.siteIndex.has(id)) return id;
  }
  return siteID || '';
}

const SENSOR_STATES = ['normal', 'warning', 'alarm', 'silent', 'unknown'];

// sensorItem is a sensor on the map: its name and state in its state's
// colour and its value; it links to its chart on the sensor page.
function sensorItem(s) {
  const st = SENSOR_STATES.includes(s.state) ? s.state : 'unknown';
  const value = st === 'unknown' || st === 'silent' ? '' : ` ${fmtValue(s.kind, s.value, s.unit)}`;
  const link = el('a', {
    class: `site-sensor st-${st}`, 'data-testid': 'site-sensor', href: `#/sensors?sensor=${encodeURIComponent(`${s.edge}/${s.id}`)}`,
    title: [s.location, s.time ? t('sites.sensor_time', { time: formatLocal(new Date(s.time)) }) : ''].filter(Boolean).join(' · '),
    dataset: { sensor: s.id, edge: s.edge, state: st, edgeOnline: String(s.edge_online !== false) },
  }, el('span', { class: 'site-sensor-dot', 'aria-hidden': 'true' }), `${s.name || s.id} `,
  el('span', { class: 'site-sensor-state', 'data-testid': 'site-sensor-state', text: `${tEnum('sensors.state', st)}${value}` }));
  if (s.edge_online === false) {
    link.classList.add('edge-off');
    link.append(' ', el('span', { class: 'site-sensor-offline', text: t('sensors.edge_offline', { edge: s.edge }) }));
  }
  return el('li', {}, `${t('sites.sensor')} `, link);
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
  const roots = siteRoots(state.sites);
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
  // Sensors go to their site's tile; a site that is no entrance but has
  // sensors gets a tile of its own.
  const sensorsAt = new Map();
  for (const s of state.sensors ?? []) {
    const home = sensorHome(s.site_id);
    if (!sensorsAt.has(home)) sensorsAt.set(home, []);
    sensorsAt.get(home).push(s);
  }
  for (const id of [...sensorsAt.keys()].sort()) {
    if (!entrances.some((n) => n.id === id)) entrances.push(state.siteIndex.get(id)?.node ?? { id, name: id, colour: 'green' });
  }
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
        s.className = `muted gate-${g.state}`;
        s.setAttribute('data-testid', 'site-gate-state');
        s.dataset.state = g.state;
        s.textContent = gateDoor(g.state);
        li.append(s);
      }
      list.append(li);
    }
    list.append(...(sensorsAt.get(n.id) ?? []).map(sensorItem));
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
