// Vigil console: a live list of alerts, newest first, fed by
// /api/v1/console/ws. The server sends the backlog after our cursor, then
// {"type":"ready"}, then live alerts; on any disconnect we reconnect with the
// last seq we showed, so nothing is missed and nothing shown twice.
// Alert text is only ever set with textContent or attributes, never as HTML.

const MAX_CARDS = 500;        // older cards are dropped from the page
const FIRST_BACKLOG = 200;    // how many past alerts a fresh page starts with
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

let cursor = null;   // last seq shown; null until the first start point is known
let attempt = 0;     // consecutive failed connections, for backoff
const counts = { red: 0, yellow: 0, green: 0 };
const shown = new Set(); // alert ids on the page

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
  if (shown.has(a.id)) return;
  shown.add(a.id);
  counts[severityOf(a)] = (counts[severityOf(a)] ?? 0) + 1;
  listEl.prepend(buildCard(a));
  while (listEl.childElementCount > MAX_CARDS) {
    const old = listEl.lastElementChild;
    shown.delete(old.dataset.alertId);
    const s = old.dataset.severity;
    if (s in counts) counts[s] -= 1;
    old.remove();
  }
}

// startCursor picks where a fresh page begins: the last FIRST_BACKLOG alerts.
async function startCursor() {
  const res = await fetch('/api/v1/healthz', { cache: 'no-store' });
  if (!res.ok) throw new Error(`healthz: HTTP ${res.status}`);
  const h = await res.json();
  return Math.max(0, Number(h.last_seq) - FIRST_BACKLOG);
}

function scheduleReconnect(why) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
  const delay = Math.round(base * (0.5 + Math.random() / 2)); // jitter spreads reconnect storms
  attempt += 1;
  setStatus('offline', `offline (${why}); retry in ${Math.ceil(delay / 1000)} s`);
  setTimeout(connect, delay);
}

async function connect() {
  setStatus('connecting', 'connecting…');
  if (cursor === null) {
    try {
      cursor = await startCursor();
    } catch (err) {
      scheduleReconnect(err.message);
      return;
    }
  }
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}/api/v1/console/ws?since=${cursor}`);

  ws.onmessage = (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (msg.type === 'alert' && msg.alert && msg.seq > cursor) {
      addAlert(msg.alert);
      cursor = msg.seq;
      // During the backlog the page renders once, at "ready".
      if (statusEl.dataset.state === 'live') renderCounts();
    } else if (msg.type === 'ready') {
      // Adopt the server's cursor: it is lower than ours if central's data was reset.
      cursor = msg.seq;
      attempt = 0;
      setStatus('live', 'live');
      renderCounts();
    }
  };
  ws.onclose = (ev) => {
    renderCounts();
    scheduleReconnect(ev.reason || `code ${ev.code}`);
  };
}

renderCounts();
connect();
