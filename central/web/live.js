// Live wall: tiles of 1, 4 or 9 cameras, each a <video> fed through Media
// Source Extensions from GET /api/v1/live/{edge}/{camera}/ws. Central
// forwards the edge's binary frames unchanged (wire/live.go): a 28-byte
// header (kind, key flag, camera, codec, sequence, the camera's wall clock
// of the fragment's first frame, its decode time at 90 kHz) and the fMP4
// bytes: the camera's own H.264, never re-encoded. Text messages carry the
// tile's state: connecting, live, offline, tampered.
//
// Latency is kept low by jumping to the live edge when the buffer lags
// more than LAG_MAX_S behind it. A camera whose codec this browser cannot
// play in MSE (H.265 on most) falls back to a snapshot refreshed every
// SNAPSHOT_MS from the edge's thumbnail endpoint.
//
// window.vigilLive exposes, per tile, the glass-to-glass latency: now
// minus the camera's wall clock of the frame on screen (tests read it).
import { injectCSS } from './shared/dom.js';

const LAG_MAX_S = 1.5;      // behind the live edge by more: jump
const LAG_TARGET_S = 0.3;   // where to land after a jump
const KEEP_S = 20;          // buffered seconds kept behind currentTime
const SNAPSHOT_MS = 2000;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 10000;
const TIMESCALE = 90000;
const LAYOUTS = [1, 4, 9];

// parseFrame reads a live frame header (wire/live.go).
export function parseFrame(buf) {
  const b = new Uint8Array(buf);
  if (b.length < 28 || b[0] !== 0x56 || b[1] !== 0x4c || b[2] !== 1) return null;
  const dv = new DataView(buf);
  const camLen = b[5];
  const codecLen = b[6];
  const dec = new TextDecoder();
  const p = 28;
  return {
    kind: b[3], // 1 init, 2 fragment, 3 end
    key: (b[4] & 1) === 1,
    seq: dv.getUint32(8),
    wallMs: Number(dv.getBigInt64(12)) / 1000,
    baseS: Number(dv.getBigUint64(20)) / TIMESCALE,
    camera: dec.decode(b.subarray(p, p + camLen)),
    codec: dec.decode(b.subarray(p + camLen, p + camLen + codecLen)),
    data: b.subarray(p + camLen + codecLen),
  };
}

class Tile {
  constructor(cam, t) {
    this.cam = cam;
    this.t = t;
    this.el = document.createElement('div');
    this.el.className = 'live-tile';
    this.el.dataset.testid = 'live-tile';
    this.el.setAttribute('data-testid', 'live-tile');
    this.el.dataset.camera = `${cam.edge}/${cam.camera}`;
    this.video = document.createElement('video');
    this.video.muted = true;
    this.video.autoplay = true;
    this.video.playsInline = true;
    this.video.setAttribute('data-testid', 'live-video');
    this.img = document.createElement('img');
    this.img.alt = '';
    this.img.hidden = true;
    this.img.setAttribute('data-testid', 'live-snapshot');
    this.label = document.createElement('div');
    this.label.className = 'live-label';
    this.label.textContent = cam.name || cam.camera;
    this.badge = document.createElement('div');
    this.badge.className = 'live-badge';
    this.badge.setAttribute('data-testid', 'live-state');
    this.el.append(this.video, this.img, this.label, this.badge);
    this.marks = [];          // {startS, wallMs}: decode time → camera clock
    this.queue = [];          // buffers waiting for the SourceBuffer
    this.closed = false;
    this.retry = RETRY_MIN_MS;
    this.serverState = 'connecting';
    this.setState('connecting');
    this.connect();
    this.timer = setInterval(() => this.tick(), 500);
  }

  setState(state) {
    this.el.dataset.state = state;
    this.badge.textContent = this.t(`live.state.${state}`);
  }

  connect() {
    if (this.closed) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/live/${encodeURIComponent(this.cam.edge)}/${encodeURIComponent(this.cam.camera)}/ws`);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') {
        try {
          const m = JSON.parse(ev.data);
          if (m.type === 'state') {
            this.serverState = m.state;
            if (!this.snapshotMode || m.state !== 'live') this.setState(this.snapshotMode && m.state === 'live' ? 'snapshot' : m.state);
          }
        } catch { /* not ours */ }
        return;
      }
      this.retry = RETRY_MIN_MS;
      const f = parseFrame(ev.data);
      if (!f) return;
      if (f.kind === 1) this.onInit(f);
      else if (f.kind === 2) this.onFragment(f);
    };
    ws.onclose = () => {
      if (this.closed) return;
      this.setState('offline');
      setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, RETRY_MAX_MS);
    };
  }

  onInit(f) {
    const mime = `video/mp4; codecs="${f.codec}"`;
    if (!window.MediaSource || !MediaSource.isTypeSupported(mime)) {
      this.startSnapshots();
      return;
    }
    if (this.sb && this.codec === f.codec) {
      this.push(f.data.slice());
      return;
    }
    this.codec = f.codec;
    this.queue = [f.data.slice()];
    this.marks = [];
    const ms = new MediaSource();
    this.ms = ms;
    this.sb = null;
    if (this.video.src) URL.revokeObjectURL(this.video.src);
    this.video.src = URL.createObjectURL(ms);
    ms.addEventListener('sourceopen', () => {
      if (this.ms !== ms) return;
      this.sb = ms.addSourceBuffer(mime);
      this.sb.mode = 'segments';
      this.sb.addEventListener('updateend', () => this.drain());
      this.drain();
    }, { once: true });
  }

  onFragment(f) {
    if (this.snapshotMode || !this.ms) return;
    this.marks.push({ startS: f.baseS, wallMs: f.wallMs });
    if (this.marks.length > 400) this.marks.splice(0, 100);
    this.push(f.data.slice());
  }

  push(buf) {
    this.queue.push(buf);
    this.drain();
  }

  drain() {
    const sb = this.sb;
    if (!sb || sb.updating || this.queue.length === 0) return;
    try {
      sb.appendBuffer(this.queue.shift());
    } catch (e) {
      // QuotaExceeded or a broken buffer: start over at the next init.
      this.queue = [];
      this.sb = null;
      this.ms = null;
      if (this.ws) this.ws.close();
    }
  }

  // tick keeps the video at the live edge and trims the buffer behind it.
  tick() {
    const v = this.video;
    if (this.snapshotMode || !this.sb || v.buffered.length === 0) return;
    const i = v.buffered.length - 1;
    const end = v.buffered.end(i);
    const start = v.buffered.start(i);
    if (end - v.currentTime > LAG_MAX_S || v.currentTime < start) {
      v.currentTime = Math.max(start, end - LAG_TARGET_S);
    }
    if (v.paused) v.play().catch(() => {});
    if (!this.sb.updating && v.currentTime - v.buffered.start(0) > KEEP_S * 1.5) {
      try { this.sb.remove(0, v.currentTime - KEEP_S); } catch { /* retried next tick */ }
    }
    if (this.serverState === 'live' && !v.paused) this.setState('live');
    const lat = this.latencyMs();
    if (lat != null) this.badge.title = this.t('live.latency', { ms: Math.round(lat) });
  }

  // latencyMs is now minus the camera's clock of the frame on screen.
  latencyMs() {
    const ct = this.video.currentTime;
    let m = null;
    for (const x of this.marks) if (x.startS <= ct + 1e-3) m = x;
    if (!m || !m.wallMs) return null;
    return Date.now() - (m.wallMs + (ct - m.startS) * 1000);
  }

  startSnapshots() {
    if (this.snapshotMode) return;
    this.snapshotMode = true;
    this.video.hidden = true;
    this.img.hidden = false;
    this.setState('snapshot');
    const load = () => {
      if (this.closed) return;
      const u = `/api/v1/edges/${encodeURIComponent(this.cam.edge)}/cameras/${encodeURIComponent(this.cam.camera)}/thumbnail?at=${encodeURIComponent(new Date(Date.now() - 1000).toISOString())}`;
      const img = new Image();
      img.onload = () => { this.img.src = img.src; };
      img.src = u;
    };
    load();
    this.snapTimer = setInterval(load, SNAPSHOT_MS);
  }

  destroy() {
    this.closed = true;
    clearInterval(this.timer);
    clearInterval(this.snapTimer);
    if (this.ws) this.ws.close();
    if (this.video.src) URL.revokeObjectURL(this.video.src);
    this.el.remove();
  }
}

// cameras lists every camera central knows from the edges' heartbeats.
async function cameras() {
  const r = await fetch('/api/v1/edges', { credentials: 'same-origin' });
  if (!r.ok) throw new Error(`edges: ${r.status}`);
  const body = await r.json();
  const out = [];
  for (const e of body.edges || []) {
    for (const c of e.cameras || []) out.push({ edge: e.id, camera: c.id, name: c.name || c.id });
  }
  return out;
}

// mountLiveWall fills root with the wall; destroy() closes every stream
// (the last viewer leaving stops the edge's stream).
// The wall's styles are in live.css (the console's CSP allows no inline
// styles).
// t is the console's translator (i18n.js); every key used here is in both
// dictionaries (central/i18n_test.go checks).
export function mountLiveWall(root, { t }) {
  injectCSS(new URL('./live.css', import.meta.url));
  const tiles = [];
  let layout = Number(localStorage.getItem('vigil.live.layout')) || 4;
  if (!LAYOUTS.includes(layout)) layout = 4;
  root.replaceChildren();
  const bar = document.createElement('div');
  bar.className = 'live-bar';
  const title = document.createElement('h2');
  title.textContent = t('live.title');
  const label = document.createElement('span');
  label.textContent = t('live.layout');
  bar.append(title, label);
  const grid = document.createElement('div');
  const buttons = LAYOUTS.map((n) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = String(n);
    b.setAttribute('data-testid', `live-layout-${n}`);
    b.addEventListener('click', () => { layout = n; localStorage.setItem('vigil.live.layout', String(n)); render(); });
    bar.append(b);
    return b;
  });
  const empty = document.createElement('p');
  empty.className = 'empty';
  empty.textContent = t('live.no_cameras');
  root.append(bar, grid, empty);
  let cams = [];

  function render() {
    grid.className = `live-grid live-${layout}`;
    buttons.forEach((b, i) => b.setAttribute('aria-pressed', String(LAYOUTS[i] === layout)));
    const want = cams.slice(0, layout);
    while (tiles.length > want.length) tiles.pop().destroy();
    for (let i = 0; i < want.length; i++) {
      if (tiles[i] && tiles[i].cam.edge === want[i].edge && tiles[i].cam.camera === want[i].camera) continue;
      if (tiles[i]) tiles[i].destroy();
      tiles[i] = new Tile(want[i], t);
    }
    grid.replaceChildren(...tiles.map((x) => x.el));
    empty.hidden = tiles.length > 0;
  }

  let stopped = false;
  async function refresh() {
    try {
      const list = await cameras();
      if (stopped) return;
      const same = list.length === cams.length && list.every((c, i) => c.edge === cams[i].edge && c.camera === cams[i].camera);
      if (!same) { cams = list; render(); }
    } catch { /* shown as offline tiles; retried */ }
  }
  refresh();
  const poll = setInterval(refresh, 10000);
  render();

  window.vigilLive = { tiles, latencyMs: (i = 0) => (tiles[i] ? tiles[i].latencyMs() : null) };
  return {
    destroy() {
      stopped = true;
      clearInterval(poll);
      while (tiles.length) tiles.pop().destroy();
      root.replaceChildren();
    },
  };
}

// liveTile is one camera's live tile outside the wall (the alarm pop-up
// shows the linked camera with it); cam is {edge, camera, name}. Call
// destroy() on it when done: the edge stops once nobody watches.
export function liveTile(cam, t) {
  injectCSS(new URL('./live.css', import.meta.url));
  return new Tile(cam, t);
}

// mount is the console's entry point (app.js imports it on the first visit
// to #/live): the wall runs while #/live is shown and is torn down when the
// guard leaves it, so the edges stop sending video nobody watches.
export function mount(root, { t } = {}) {
  let wall = null;
  const sync = () => {
    const on = location.hash === '#/live';
    if (on && !wall) wall = mountLiveWall(root, { t });
    else if (!on && wall) { wall.destroy(); wall = null; }
  };
  window.addEventListener('hashchange', sync);
  sync();
  return { destroy() { window.removeEventListener('hashchange', sync); if (wall) wall.destroy(); wall = null; } };
}
