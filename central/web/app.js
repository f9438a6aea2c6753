// Vigil console: a live list of alerts, newest first, fed by
// /api/v1/console/ws. A fresh page connects without a cursor and gets a
// snapshot of the open alerts; on any disconnect it reconnects with the last
// seq it saw (?since=), gets every change after it, then {"type":"ready"},
// then live changes: new alerts ("alert") and changed ones ("update", the
// whole alert again), so nothing is missed and nothing shown twice.
// Alert text is only ever set with textContent or attributes, never as HTML.

const MAX_CARDS = 500;        // older cards are dropped from the page
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const SEVERITIES = ['red', 'yellow', 'green'];

const listEl = document.getElementById('alerts');
const emptyEl = document.getElementById('empty');
const statusEl = document.getElementById('status');
const template = document.getElementById('alert-card');
const countEls = Object.fromEntries(SEVERITIES.map((s) => [s, document.getElementById(`count-${s}`)]));

// Guards read local time in the watch room; the exact UTC instant is in the
// title for reports.
const localTime = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'Asia/Shanghai',
  year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});

let cursor = null;   // last change seq seen; null until the first snapshot
let attempt = 0;     // consecutive failed connections, for backoff
const counts = { red: 0, yellow: 0, green: 0 };
const shown = new Map(); // alert id → its card on the page

function formatLocal(date) {
  const p = Object.fromEntries(localTime.formatToParts(date).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

function setStatus(state, text) {
  statusEl.dataset.state = state;
  statusEl.textContent = text;
}

function renderCounts() {
  for (const s of SEVERITIES) countEls[s].textContent = String(counts[s]);
  emptyEl.hidden = listEl.childElementCount > 0;
}

function severityOf(a) {
  return SEVERITIES.includes(a.severity) ? a.severity : 'unknown';
}

function buildCard(a) {
  const card = template.content.firstElementChild.cloneNode(true);
  const sev = severityOf(a);
  card.classList.add(`sev-${sev}`);
  card.dataset.alertId = a.id;
  card.dataset.seq = String(a.seq);
  card.dataset.severity = sev;
  card.dataset.state = a.state || 'raised';

  const img = card.querySelector('.snap');
  const noSnap = card.querySelector('.nosnap');
  if (typeof a.snapshot_url === 'string' && a.snapshot_url.startsWith('/api/')) {
    img.src = a.snapshot_url;
    img.alt = `snapshot from ${a.source}`;
    noSnap.remove();
  } else {
    img.remove();
  }

  card.querySelector('.sev').textContent = sev;
  card.querySelector('.kind').textContent = a.kind;
  card.querySelector('.source').textContent = a.source;
  card.querySelector('.summary').textContent = a.summary;
  card.querySelector('.site').textContent = a.site_id;
  card.querySelector('.state').textContent = card.dataset.state;

  const t = card.querySelector('time');
  const when = new Date(a.time);
  if (Number.isNaN(when.getTime())) {
    t.textContent = String(a.time);
  } else {
    t.dateTime = when.toISOString();
    t.textContent = formatLocal(when);
    t.title = `${when.toISOString()} UTC`;
  }
  return card;
}

function addAlert(a) {
  if (shown.has(a.id)) {
    updateAlert(a);
    return;
  }
  const card = buildCard(a);
  shown.set(a.id, card);
  counts[severityOf(a)] = (counts[severityOf(a)] ?? 0) + 1;
  listEl.prepend(card);
  while (listEl.childElementCount > MAX_CARDS) {
    const old = listEl.lastElementChild;
    shown.delete(old.dataset.alertId);
    const s = old.dataset.severity;
    if (s in counts) counts[s] -= 1;
    old.remove();
  }
}

// updateAlert redraws a card in place: a guard acted on it, or the edge
// sent more (an escalation, the end of the event).
function updateAlert(a) {
  const old = shown.get(a.id);
  if (!old) return; // scrolled off the page long ago
  const card = buildCard(a);
  const before = old.dataset.severity;
  if (before in counts) counts[before] -= 1;
  counts[severityOf(a)] = (counts[severityOf(a)] ?? 0) + 1;
  old.replaceWith(card);
  shown.set(a.id, card);
}

function clearAlerts() {
  listEl.replaceChildren();
  shown.clear();
  for (const s of SEVERITIES) counts[s] = 0;
}

function scheduleReconnect(why) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
  const delay = Math.round(base * (0.5 + Math.random() / 2)); // jitter spreads reconnect storms
  attempt += 1;
  setStatus('offline', `offline (${why}); retry in ${Math.ceil(delay / 1000)} s`);
  setTimeout(connect, delay);
}

function connect() {
  setStatus('connecting', 'connecting…');
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  // batch=1: a frame may hold several messages, one JSON object per line.
  const query = cursor === null ? '?batch=1' : `?since=${cursor}&batch=1`;
  const ws = new WebSocket(`${proto}//${location.host}/api/v1/console/ws${query}`);

  ws.onmessage = (ev) => {
    for (const line of String(ev.data).split('\n')) {
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      handle(msg);
    }
    renderIfLive();
  };
  ws.onclose = (ev) => {
    renderCounts();
    scheduleReconnect(ev.reason || `code ${ev.code}`);
  };
}

// During a backlog the page renders once, at "ready"; live, once per frame.
function renderIfLive() {
  if (statusEl.dataset.state === 'live') renderCounts();
}

// handle applies one console message.
function handle(msg) {
  if ((msg.type === 'alert' || msg.type === 'update') && msg.alert && msg.seq > cursor) {
    if (msg.type === 'alert') addAlert(msg.alert);
    else updateAlert(msg.alert);
    cursor = msg.seq;
  } else if (msg.type === 'snapshot') {
    // A fresh start: the open alerts, newest first.
    clearAlerts();
    for (const a of [...(msg.open ?? [])].reverse()) addAlert(a);
    cursor = msg.seq;
    attempt = 0;
    setStatus('live', 'live');
  } else if (msg.type === 'ready') {
    // Adopt the server's cursor: it is lower than ours if central's data was reset.
    cursor = msg.seq;
    attempt = 0;
    setStatus('live', 'live');
  }
  // "site" (colour changes) and "edge" (online/offline) wait for the sites panel.
}

renderCounts();
connect();
