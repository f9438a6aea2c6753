// Live wall: tiles of 1, 4, 9 or 16 cameras, each a <video> fed through Media
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
// Tiles are labelled with the cameras' names; a double click enlarges a
// tile (and back); a tile whose camera has an open alert is outlined in
// the alert's colour. Each user keeps named layouts (grid and which
// camera in which tile) in central (GET/PUT /api/v1/me/layouts).
//
// window.vigilLive exposes, per tile, the glass-to-glass latency: now
// minus the camera's wall clock of the frame on screen (tests read it).
import { el, injectCSS } from './shared/dom.js';

const LAG_MAX_S = 1.5;      // behind the live edge by more: jump
const LAG_TARGET_S = 0.3;   // where to land after a jump
const KEEP_S = 20;          // buffered seconds kept behind currentTime
const SNAPSHOT_MS = 2000;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 10000;
const TIMESCALE = 90000;
const LAYOUTS = [1, 4, 9, 16];
const ALERT_MS = 1000;      // how often tiles look at the open alerts
const SEV_RANK = { red: 3, yellow: 2, green: 1 };

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
    this.alert = document.createElement('div');
    this.alert.className = 'live-alert';
    this.alert.hidden = true;
    this.alert.setAttribute('data-testid', 'live-alert');
    this.el.append(this.video, this.img, this.label, this.badge, this.alert);
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

  // setAlert marks the tile with its camera's most severe open alert
  // (null: none) and how many are open.
  setAlert(a, count) {
    const sev = a ? a.severity : '';
    if (sev) this.el.dataset.alert = sev;
    else delete this.el.dataset.alert;
    this.alert.hidden = !a;
    if (a) this.alert.textContent = this.t(`live.alert.${sev === 'red' || sev === 'yellow' ? sev : 'green'}`, { count });
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
// dictionaries (central/i18n_test.go checks). alertsFor(edge, camera)
// gives a camera's open alerts (app.js knows them from its feed).
export function mountLiveWall(root, { t, alertsFor = () => [] }) {
  injectCSS(new URL('./live.css', import.meta.url));
  const wall = new Wall(root, t, alertsFor);
  window.vigilLive = { tiles: wall.tiles, latencyMs: (i = 0) => (wall.tiles[i] ? wall.tiles[i].latencyMs() : null) };
  return { destroy() { wall.destroy(); } };
}

// Wall is the live wall's state: the grid, which camera in which tile,
// the user's saved layouts.
class Wall {
  constructor(root, t, alertsFor) {
    this.root = root;
    this.t = t;
    this.alertsFor = alertsFor;
    this.tiles = [];       // Tile or null (an empty place) per grid place
    this.cams = [];
    this.assign = null;    // ["edge/camera" or ""] per place; null: every camera in order
    this.layouts = [];     // saved: {name, grid, tiles}
    this.current = '';
    this.stopped = false;
    this.layout = Number(localStorage.getItem('vigil.live.layout')) || 4;
    if (!LAYOUTS.includes(this.layout)) this.layout = 4;
    this.build();
    this.refresh();
    this.loadLayouts();
    this.poll = setInterval(() => this.refresh(), 10000);
    this.alertTimer = setInterval(() => this.showAlerts(), ALERT_MS);
    this.onKey = (ev) => { if (ev.key === 'Escape') this.enlarge(null); };
    document.addEventListener('keydown', this.onKey);
    this.render();
  }

  build() {
    const t = this.t;
    const bar = el('div', { class: 'live-bar' }, el('h2', { text: t('live.title') }), el('span', { text: t('live.layout') }));
    this.buttons = LAYOUTS.map((n) => {
      const b = el('button', { type: 'button', 'data-testid': `live-layout-${n}`, text: String(n) });
      b.addEventListener('click', () => this.setGrid(n));
      bar.append(b);
      return b;
    });
    this.saved = el('select', { 'data-testid': 'live-saved', 'aria-label': t('live.saved') });
    this.saved.addEventListener('change', () => this.choose(this.saved.value));
    const name = el('input', { 'data-testid': 'live-save-name', maxlength: '60', placeholder: t('live.layout_name') });
    const save = el('button', { type: 'submit', 'data-testid': 'live-save', text: t('live.save_as') });
    const form = el('form', { class: 'live-save' }, name, save);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (name.value.trim()) this.saveAs(name.value.trim()).then(() => { name.value = ''; });
    });
    this.note = el('span', { class: 'muted live-note', 'data-testid': 'live-note', role: 'status' });
    bar.append(el('span', { class: 'live-sep', text: t('live.saved') }), this.saved, form, this.note,
      el('span', { class: 'muted live-hint', text: t('live.hint') }));
    this.grid = el('div', { class: 'live-grid', 'data-testid': 'live-grid' });
    this.empty = el('p', { class: 'empty', text: t('live.no_cameras') });
    this.root.replaceChildren(bar, this.grid, this.empty);
  }

  async refresh() {
    try {
      const list = await cameras();
      if (this.stopped) return;
      const same = list.length === this.cams.length && list.every((c, i) => c.edge === this.cams[i].edge && c.camera === this.cams[i].camera && c.name === this.cams[i].name);
      if (!same) {
        this.cams = list;
        this.render();
      }
    } catch { /* shown as offline tiles; retried */ }
  }

  // wanted is the camera of each place of the grid (undefined: empty).
  wanted() {
    const ids = this.assign ?? this.cams.map((c) => `${c.edge}/${c.camera}`);
    return Array.from({ length: this.layout }, (_, i) => this.cams.find((c) => `${c.edge}/${c.camera}` === ids[i]));
  }

  render() {
    this.grid.className = `live-grid live-${this.layout}`;
    this.buttons.forEach((b, i) => b.setAttribute('aria-pressed', String(LAYOUTS[i] === this.layout)));
    const want = this.wanted();
    while (this.tiles.length > want.length) this.tiles.pop()?.destroy();
    for (let i = 0; i < want.length; i++) {
      const have = this.tiles[i];
      const w = want[i];
      if (have && w && have.cam.edge === w.edge && have.cam.camera === w.camera) {
        have.label.textContent = w.name || w.camera;
        continue;
      }
      if (have) have.destroy();
      this.tiles[i] = w ? new Tile(w, this.t) : null;
    }
    this.grid.replaceChildren(...want.map((w, i) => this.place(i, this.tiles[i])));
    this.empty.hidden = this.cams.length > 0;
    this.showAlerts();
  }

  // place is one place of the grid: its tile (or an empty one) with a
  // chooser of the camera it shows.
  place(i, tile) {
    const box = tile ? tile.el : el('div', { class: 'live-tile live-empty', 'data-testid': 'live-empty' });
    for (const old of box.querySelectorAll('.live-pick')) old.remove();
    const pick = el('select', { class: 'live-pick', 'data-testid': 'live-pick', 'aria-label': this.t('live.pick') },
      el('option', { value: '', text: this.t('live.pick_none') }),
      ...this.cams.map((c) => el('option', { value: `${c.edge}/${c.camera}`, text: c.name || c.camera })));
    pick.value = tile ? `${tile.cam.edge}/${tile.cam.camera}` : '';
    pick.addEventListener('change', () => this.setPlace(i, pick.value));
    pick.addEventListener('dblclick', (ev) => ev.stopPropagation());
    box.append(pick);
    if (tile && !tile.wallBound) {
      tile.wallBound = true;
      tile.el.addEventListener('dblclick', () => this.enlarge(tile.el.classList.contains('enlarged') ? null : tile));
    }
    return box;
  }

  setPlace(i, id) {
    const ids = this.wanted().map((c) => (c ? `${c.edge}/${c.camera}` : ''));
    ids[i] = id;
    this.assign = ids;
    this.render();
  }

  setGrid(n) {
    if (this.assign) this.assign = Array.from({ length: n }, (_, i) => this.assign[i] || '');
    this.layout = n;
    localStorage.setItem('vigil.live.layout', String(n));
    this.enlarge(null);
    this.render();
  }

  // enlarge shows one tile over the whole wall (null: all again).
  enlarge(tile) {
    for (const x of this.tiles) if (x) x.el.classList.toggle('enlarged', x === tile);
    this.grid.classList.toggle('has-enlarged', !!tile);
  }

  // showAlerts outlines the tiles whose camera has an open alert.
  showAlerts() {
    for (const tile of this.tiles) {
      if (!tile) continue;
      let open = [];
      try { open = this.alertsFor(tile.cam.edge, tile.cam.camera) ?? []; } catch { open = []; }
      const top = open.reduce((a, b) => ((SEV_RANK[b.severity] ?? 0) > (SEV_RANK[a?.severity] ?? 0) ? b : a), null);
      tile.setAlert(top, open.length);
    }
  }

  async loadLayouts() {
    try {
      const r = await fetch('/api/v1/me/layouts', { credentials: 'same-origin' });
      if (!r.ok) return;
      const body = await r.json();
      this.layouts = Array.isArray(body.layouts) ? body.layouts : [];
      this.current = body.current || '';
      this.renderSaved();
      if (this.current) this.choose(this.current, false);
    } catch { /* the wall works without saved layouts */ }
  }

  renderSaved() {
    this.saved.replaceChildren(el('option', { value: '', text: this.t('live.all_cameras') }),
      ...this.layouts.map((l) => el('option', { value: l.name, text: `${l.name} (${l.grid})` })));
    this.saved.value = this.current;
  }

  // choose switches to a saved layout ('' : every camera in order).
  choose(name, store = true) {
    const l = this.layouts.find((x) => x.name === name);
    this.current = l ? name : '';
    this.assign = l ? [...(l.tiles ?? [])] : null;
    if (l && LAYOUTS.includes(l.grid)) this.layout = l.grid;
    this.saved.value = this.current;
    this.enlarge(null);
    this.render();
    if (store) this.store();
  }

  async saveAs(name) {
    const tiles = this.wanted().map((c) => (c ? `${c.edge}/${c.camera}` : ''));
    this.layouts = [...this.layouts.filter((l) => l.name !== name), { name, grid: this.layout, tiles }];
    this.current = name;
    this.assign = tiles;
    this.renderSaved();
    await this.store();
  }

  async store() {
    try {
      const r = await fetch('/api/v1/me/layouts', { method: 'PUT', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-Vigil-Request': '1' },
        body: JSON.stringify({ layouts: this.layouts, current: this.current }) });
      this.note.textContent = r.ok ? this.t('live.saved_ok') : this.t('live.save_failed', { status: r.status });
    } catch (e) {
      this.note.textContent = this.t('live.save_failed', { status: e.message });
    }
  }

  destroy() {
    this.stopped = true;
    clearInterval(this.poll);
    clearInterval(this.alertTimer);
    document.removeEventListener('keydown', this.onKey);
    while (this.tiles.length) this.tiles.pop()?.destroy();
    this.root.replaceChildren();
  }
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
export function mount(root, { t, alertsFor } = {}) {
  let wall = null;
  const sync = () => {
    const on = location.hash === '#/live';
    if (on && !wall) wall = mountLiveWall(root, { t, alertsFor });
    else if (!on && wall) { wall.destroy(); wall = null; }
  };
  window.addEventListener('hashchange', sync);
  sync();
  return { destroy() { window.removeEventListener('hashchange', sync); if (wall) wall.destroy(); wall = null; } };
}
