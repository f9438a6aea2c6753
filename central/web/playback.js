// Recorded playback (#/playback?cams=edge/camera,…&at=RFC3339): 1, 4 or 9
// cameras played in step from the edges' recordings. The page opens a
// session for the half hour around the moment (POST /api/v1/playback/
// sessions, one audit entry: who, which cameras, which range); every
// camera's <video> is fed by playback_feed.js, and media time t is the
// wall time origin + t on every camera. One clock (performance.now(),
// times the speed) is the master: every tick each video is seeked when
// more than a second off, nudged when more than 0.2 s off, and the clock
// holds while a camera that should have video at the playhead has none
// buffered yet (at most a few seconds: a camera that cannot deliver does
// not stop the others).
//
// The timeline (playback_timeline.js) shows each camera's recorded spans,
// gaps, alerts, gate events and bookmarks; motion boxes, zones and lines
// are drawn over the videos when the overlay is on. Bookmarks and an
// evidence request for the range in view are made from here.
//
// window.vigilPlayback is for tests: mediaTimes(), wallTime(), cameras(),
// keyframesOnly(), firstFrameMs().
import { t, tEnum, applyI18n, onLangChange } from './i18n.js';
import { api } from './api.js';
import { formatLocal, local } from './localtime.js';
import { el, injectCSS } from './shared/dom.js';
import { Feed } from './playback_feed.js';
import { Timeline } from './playback_timeline.js';
import { Overlay } from './playback_overlay.js';

const HALF_MS = 15 * 60000;      // a session covers the moment ± this
const SPEEDS = [1, 2, 4, 8];
const LAYOUTS = [1, 4, 9];
const ZOOMS_MS = [2 * 60000, 10 * 60000, 30 * 60000];
const TICK_MS = 100;
const TIMELINE_MS = 10000;       // the timeline is asked again this often
const SLOW = 0.5;                // a window that took over half its playing time: slow link
const PROBE_MS = 15000;          // in keyframes mode, try a full window this often
const RENEW_MIN_MS = 10000;
const EVIDENCE_ROLES = ['police_liaison', 'admin'];

// parseHash reads #/playback?cams=edge/camera,…&at=RFC3339.
export function parseHash(hash) {
  const i = hash.indexOf('?');
  const q = new URLSearchParams(i >= 0 ? hash.slice(i + 1) : '');
  const cams = (q.get('cams') || '').split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const j = s.indexOf('/');
    return j > 0 ? { edge: s.slice(0, j), camera: s.slice(j + 1) } : null;
  }).filter(Boolean);
  const at = Date.parse(q.get('at') || '');
  return { cams, at: Number.isFinite(at) ? at : null };
}

// playbackHref is the page's address for cameras (["edge/camera"] or
// [{edge, camera}]) at a moment (ms).
export function playbackHref(cams, atMs) {
  const list = cams.map((c) => (typeof c === 'string' ? c : `${c.edge}/${c.camera}`));
  return `#/playback?cams=${list.map(encodeURIComponent).join(',')}&at=${encodeURIComponent(new Date(atMs).toISOString())}`;
}

const PAGE = `
<div class="pb-top">
  <h2 data-i18n="playback.title"></h2>
  <span class="pb-layouts"><span data-i18n="playback.layout"></span></span>
  <details class="pb-choose" data-testid="pb-choose">
    <summary data-i18n="playback.cameras"></summary>
    <div class="pb-choices panel">
      <p class="muted pb-choose-note"></p>
      <div class="pb-options" data-testid="pb-camera-options"></div>
      <button type="button" data-testid="pb-choose-apply" data-i18n="playback.apply"></button>
    </div>
  </details>
  <span class="badge pb-kf" data-testid="pb-keyframes" data-i18n="playback.keyframes_only" hidden></span>
</div>
<p class="error" data-testid="pb-error" role="alert" hidden></p>
<p class="empty" data-testid="pb-empty" data-i18n="playback.pick" hidden></p>
<div class="pb-grid" data-testid="pb-grid"></div>
<div class="pb-controls panel">
  <button type="button" data-testid="pb-play" class="pb-play"></button>
  <button type="button" class="ghost" data-testid="pb-step-back" data-i18n="playback.step_back" data-i18n-title="playback.step_back_title"></button>
  <button type="button" class="ghost" data-testid="pb-step-forward" data-i18n="playback.step_forward" data-i18n-title="playback.step_forward_title"></button>
  <button type="button" class="ghost" data-testid="pb-prev-alert" data-i18n="playback.prev_alert"></button>
  <button type="button" class="ghost" data-testid="pb-next-alert" data-i18n="playback.next_alert"></button>
  <span class="pb-speeds" role="group" data-i18n-aria="playback.speed"></span>
  <time class="pb-clock" data-testid="playback-clock"></time>
  <button type="button" class="ghost" data-testid="overlay-toggle" aria-pressed="false" data-i18n="playback.overlay"></button>
  <span class="pb-zoom">
    <button type="button" class="ghost" data-testid="pb-pan-back" data-i18n="playback.pan_back" data-i18n-title="playback.pan_back_title"></button>
    <button type="button" class="ghost" data-testid="pb-zoom-out" data-i18n="playback.zoom_out"></button>
    <button type="button" class="ghost" data-testid="pb-zoom-in" data-i18n="playback.zoom_in"></button>
    <button type="button" class="ghost" data-testid="pb-pan-forward" data-i18n="playback.pan_forward" data-i18n-title="playback.pan_forward_title"></button>
  </span>
</div>
<div class="pb-timeline" data-testid="pb-timeline"></div>
<p class="hint" data-i18n="playback.keys"></p>
<div class="pb-actions">
  <form class="pb-bookmark panel" data-testid="pb-bookmark-form">
    <button type="button" data-testid="pb-bookmark" data-i18n="playback.bookmark"></button>
    <span class="pb-bookmark-edit" hidden>
      <span class="muted pb-bookmark-what"></span>
      <input name="note" maxlength="500" required data-testid="pb-bookmark-note" data-i18n-placeholder="playback.bookmark_note">
      <button type="submit" data-testid="pb-bookmark-save" data-i18n="playback.save"></button>
      <button type="button" class="ghost pb-bookmark-cancel" data-i18n="playback.cancel"></button>
    </span>
    <span class="muted pb-bookmark-done" data-testid="pb-bookmark-done" role="status"></span>
  </form>
  <form class="pb-evidence panel" data-testid="pb-evidence-form" hidden>
    <button type="button" data-testid="pb-evidence" data-i18n="playback.evidence"></button>
    <span class="pb-evidence-edit" hidden>
      <span class="muted pb-evidence-what" data-testid="pb-evidence-what"></span>
      <input name="case_number" maxlength="100" required data-testid="pb-evidence-case" data-i18n-placeholder="evidence.case_number">
      <input name="reason" maxlength="2000" required data-testid="pb-evidence-reason" data-i18n-placeholder="evidence.reason">
      <button type="submit" data-testid="pb-evidence-submit" data-i18n="evidence.request"></button>
    </span>
    <span class="muted pb-evidence-done" data-testid="pb-evidence-done" role="status"></span>
  </form>
  <form class="pb-search panel" data-testid="pb-bookmark-search">
    <input name="q" type="search" data-testid="pb-bookmark-q" data-i18n-placeholder="playback.bookmark_search">
    <button type="submit" class="ghost" data-testid="pb-bookmark-find" data-i18n="playback.find"></button>
    <ul class="pb-found" data-testid="pb-bookmark-results"></ul>
  </form>
</div>`;

// Clock is the master clock: wall time of the playhead, in ms.
class Clock {
  constructor() {
    this.wall = 0;
    this.perf = performance.now();
    this.playing = true;
    this.speed = 1;
  }

  now() { return this.playing ? this.wall + (performance.now() - this.perf) * this.speed : this.wall; }

  set(ms) {
    this.wall = ms;
    this.perf = performance.now();
  }

  setPlaying(on) {
    this.set(this.now());
    this.playing = on;
  }

  setSpeed(s) {
    this.set(this.now());
    this.speed = s;
  }
}

// mount is the console's entry point (app.js, on the first visit to
// #/playback): the page follows the address while it is shown and closes
// its session when the guard leaves.
export function mount(root, { session } = {}) {
  injectCSS(new URL('./playback.css', import.meta.url));
  const gen = String(Number(root.dataset.gen || 0) + 1); // a newer mount (another user) retires this one
  root.dataset.gen = gen;
  const page = new PlaybackPage(root, session);
  page.live = () => root.dataset.gen === gen;
  const sync = () => {
    if (root.dataset.gen !== gen) {
      window.removeEventListener('hashchange', sync);
      page.stop();
    } else if (location.hash.startsWith('#/playback')) page.load(parseHash(location.hash));
    else page.stop();
  };
  window.addEventListener('hashchange', sync);
  onLangChange(() => { if (root.dataset.gen === gen) page.relabel(); });
  sync();
  return { destroy() { window.removeEventListener('hashchange', sync); page.stop(); root.replaceChildren(); } };
}

class PlaybackPage {
  constructor(root, user) {
    this.root = root;
    this.user = user;
    this.clock = new Clock();
    this.feeds = [];
    this.session = null;
    this.gen = 0;
    this.key = '';
    this.zoom = 1;
    this.view = null;
    this.keyframes = false;
    this.slow = 0;
    this.lastProbe = 0;
    this.firstFrame = null;
    this.active = 0;
    this.known = [];      // cameras from GET /api/v1/edges: {edge, camera, name, site}
    root.innerHTML = PAGE;
    root.classList.add('playback');
    this.q = (sel) => root.querySelector(sel);
    this.grid = this.q('.pb-grid');
    this.timeline = new Timeline(this.q('.pb-timeline'), {
      jump: (ms) => this.jump(ms, true),
      scrub: (ms) => this.scrub(ms),
      select: (i) => this.select(i),
    });
    this.overlay = new Overlay();
    this.buildControls();
    bindForms(this);
    applyI18n(root);
    this.relabel();
    document.addEventListener('keydown', (ev) => this.onKey(ev));
    window.vigilPlayback = {
      mediaTimes: () => this.feeds.map((f) => f.video.currentTime),
      wallTime: () => (this.session ? new Date(this.clock.now()).toISOString() : null),
      cameras: () => this.feeds.map((f) => ({ ...f.cam })),
      keyframesOnly: () => this.keyframes,
      firstFrameMs: () => this.firstFrame,
      session: () => this.session && { ...this.session },
      playing: () => this.clock.playing,
    };
  }

  buildControls() {
    const layouts = this.q('.pb-layouts');
    this.layoutButtons = LAYOUTS.map((n) => {
      const b = el('button', { type: 'button', class: 'ghost', 'data-testid': `pb-layout-${n}`, text: String(n) });
      b.addEventListener('click', () => this.setLayout(n));
      layouts.append(b);
      return b;
    });
    const speeds = this.q('.pb-speeds');
    this.speedButtons = SPEEDS.map((s) => {
      const b = el('button', { type: 'button', class: 'ghost', 'data-testid': `pb-speed-${s}`, text: `${s}×` });
      b.addEventListener('click', () => this.setSpeed(s));
      speeds.append(b);
      return b;
    });
    const on = (id, f) => this.q(`[data-testid="${id}"]`).addEventListener('click', f);
    on('pb-play', () => this.togglePlay());
    on('pb-step-back', () => this.step(-1));
    on('pb-step-forward', () => this.step(1));
    on('pb-prev-alert', () => this.alertJump(-1));
    on('pb-next-alert', () => this.alertJump(1));
    on('overlay-toggle', () => this.toggleOverlay());
    on('pb-zoom-in', () => this.setZoom(this.zoom - 1));
    on('pb-zoom-out', () => this.setZoom(this.zoom + 1));
    on('pb-pan-back', () => this.pan(-1));
    on('pb-pan-forward', () => this.pan(1));
    on('pb-choose-apply', () => this.applyChoice());
  }

  // relabel sets the words that depend on state (and the language).
  relabel() {
    const play = this.q('[data-testid="pb-play"]');
    play.textContent = this.clock.playing ? t('playback.pause') : t('playback.play');
    play.setAttribute('aria-pressed', String(this.clock.playing));
    this.speedButtons.forEach((b, i) => b.setAttribute('aria-pressed', String(SPEEDS[i] === this.clock.speed)));
    this.layoutButtons.forEach((b, i) => b.setAttribute('aria-pressed', String(LAYOUTS[i] === this.layout)));
    this.q('.pb-choose-note').textContent = t('playback.choose_note', { count: this.layout || 1 });
    for (const f of this.feeds) this.showState(f);
    this.timeline.render();
  }

  // load opens what the address asks for, unless it is shown already.
  async load({ cams, at }) {
    this.visible = true;
    const key = `${cams.map((c) => `${c.edge}/${c.camera}`).join(',')}@${at}`;
    if (key === this.key && this.session) return;
    this.key = key;
    const clicked = window.vigilPlaybackClickAt;
    this.clickAt = clicked && performance.now() - clicked < 10000 ? clicked : performance.now();
    window.vigilPlaybackClickAt = 0;
    this.firstFrame = null;
    this.awaitFrame = true;
    this.clock.setPlaying(true); // a new moment plays from the start
    this.layout = LAYOUTS.find((n) => n >= cams.length) || 9;
    this.cams = cams.slice(0, 9);
    this.q('[data-testid="pb-empty"]').hidden = cams.length > 0;
    this.loadKnown();
    if (!cams.length) {
      this.closeSession();
      this.q('.pb-choose').open = true;
      this.relabel();
      return;
    }
    this.view = null;
    await this.openSession(at ?? Date.now() - 2 * 60000);
  }

  // openSession asks for a session around atMs and starts playing there.
  async openSession(atMs) {
    const gen = ++this.gen;
    const now = Date.now();
    const at = Math.min(atMs, now - 1000);
    const body = { cameras: this.cams.map((c) => ({ edge: c.edge, camera: c.camera })),
      from: new Date(at - HALF_MS).toISOString(), to: new Date(Math.min(at + HALF_MS, now)).toISOString() };
    this.renewedAt = performance.now();
    this.showError(null);
    let res;
    try {
      res = await api('/api/v1/playback/sessions', { method: 'POST', body });
    } catch (e) {
      if (gen === this.gen) this.showError(e);
      return;
    }
    if (gen !== this.gen || !this.visible) {
      api(`/api/v1/playback/sessions/${encodeURIComponent(res.id)}`, { method: 'DELETE' }).catch(() => {});
      return;
    }
    this.closeSession();
    this.session = { id: res.id, origin: Date.parse(res.origin), from: Date.parse(res.from), to: Date.parse(res.to) };
    const names = new Map((res.cameras ?? []).map((c) => [`${c.edge}/${c.camera}`, c.name]));
    this.cams = this.cams.map((c) => ({ ...c, name: names.get(`${c.edge}/${c.camera}`) || this.nameOf(c) }));
    this.buildTiles();
    this.clock.set(at);
    this.lastP = at;
    for (const f of this.feeds) f.seek(at);
    if (!this.view || at < this.view.from || at > this.view.to) this.setZoom(this.zoom, at);
    else this.timeline.render();
    this.timeline.setCameras(this.cams);
    this.loadTimeline();
    this.overlay.reset();
    this.tick();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), TICK_MS);
    clearInterval(this.tlTimer);
    this.tlTimer = setInterval(() => this.loadTimeline(), TIMELINE_MS);
    this.relabel();
  }

  buildTiles() {
    this.grid.className = `pb-grid pb-n-${this.layout}`;
    const hooks = { onWindow: (f, s) => this.onWindow(f, s), onFrame: (f) => this.onFrame(f), onState: (f) => this.showState(f) };
    this.grid.replaceChildren();
    this.feeds = this.cams.map((cam, i) => {
      const video = el('video', { muted: true, playsinline: true, 'data-testid': 'playback-video', dataset: { camera: `${cam.edge}/${cam.camera}` } });
      video.muted = true;
      const canvas = el('canvas', { class: 'pb-overlay', 'data-testid': 'pb-overlay', hidden: true });
      const label = el('div', { class: 'pb-label', text: cam.name || cam.camera, 'data-testid': 'pb-tile-name' });
      const badge = el('div', { class: 'pb-state', 'data-testid': 'pb-state' });
      const tile = el('div', { class: 'pb-tile', 'data-testid': 'pb-tile', dataset: { camera: `${cam.edge}/${cam.camera}` } }, video, canvas, label, badge);
      tile.addEventListener('click', () => this.select(i));
      this.grid.append(tile);
      const f = new Feed(this.session, cam, video, hooks);
      f.tile = tile;
      f.canvas = canvas;
      f.badge = badge;
      return f;
    });
    this.select(Math.min(this.active, this.feeds.length - 1));
  }

  closeSession() {
    clearInterval(this.timer);
    clearInterval(this.tlTimer);
    for (const f of this.feeds) f.close();
    this.feeds = [];
    this.grid.replaceChildren();
    if (this.session) api(`/api/v1/playback/sessions/${encodeURIComponent(this.session.id)}`, { method: 'DELETE' }).catch(() => {});
    this.session = null;
  }

  // stop ends playback when the guard leaves the page.
  stop() {
    if (!this.visible) return;
    this.visible = false;
    this.gen++;
    this.key = '';
    this.closeSession();
  }

  async loadTimeline() {
    const s = this.session;
    if (!s) return;
    try {
      const res = await api(`/api/v1/playback/sessions/${encodeURIComponent(s.id)}/timeline`);
      if (this.session === s) this.timeline.setData(res);
    } catch (e) {
      if (this.session === s && e.status !== 404) this.showError(e);
    }
  }

  // tick is the clock's heartbeat: hold while video is awaited, keep
  // every video on the playhead, fetch ahead, move the timeline.
  tick() {
    const s = this.session;
    if (!s) return;
    if (this.live && !this.live()) {
      this.stop();
      return;
    }
    let p = this.clock.now();
    if (this.clock.playing && !this.scrubbing) {
      if (p >= s.to) {
        p = s.to;
        this.clock.set(p);
        this.atEnd(p);
      } else if (this.feeds.some((f, i) => f.waiting(p, this.timeline.recorded(i, p)))) {
        p = this.lastP ?? p;
        this.clock.set(p);
      } else {
        p = this.skipGap(p);
      }
    }
    this.lastP = p;
    const speed = this.clock.speed;
    for (const f of this.feeds) f.follow(p, this.clock.playing && !this.scrubbing, speed);
    this.feeds.forEach((f, i) => f.pump(p, speed, () => this.keyframes && !(i === 0 && this.probeDue())));
    this.timeline.setPlayhead(p);
    this.followView(p);
    const clock = this.q('[data-testid="playback-clock"]');
    const iso = new Date(p).toISOString();
    if (clock.dataset.time !== iso) {
      clock.dataset.time = iso;
      clock.dateTime = iso;
      clock.textContent = formatLocal(new Date(p));
      clock.title = t('time.utc', { time: iso });
    }
    if (this.overlay.on) this.overlay.draw(this.feeds, p, s);
    if (this.awaitFrame) for (const f of this.feeds) this.onFrame(f);
  }

  // skipGap moves the playhead over a stretch where no camera has video
  // to the first picture after it (none waited for: the edges said so).
  skipGap(p) {
    if (this.feeds.some((f) => f.has(f.media(p)) && !f.knownEmpty(p))) return p;
    const next = Math.min(...this.feeds.map((f) => f.nextVideo(p)));
    if (!Number.isFinite(next) || next <= p || next > this.session.to) return p;
    this.clock.set(next);
    return next;
  }

  probeDue() {
    if (performance.now() - this.lastProbe < PROBE_MS) return false;
    this.lastProbe = performance.now();
    return true;
  }

  // atEnd: the playhead reached the session's end; a session that ended
  // before now is followed by the next one, else playback pauses.
  atEnd(p) {
    if (this.session.to < Date.now() - 3000 && performance.now() - this.renewedAt > RENEW_MIN_MS) {
      this.openSession(p);
      return;
    }
    if (performance.now() - this.renewedAt > RENEW_MIN_MS) this.setPlaying(false);
  }

  // followView keeps the playhead in view while playing.
  followView(p) {
    const v = this.view;
    if (!v || this.scrubbing || (p >= v.from && p <= v.to)) return;
    const span = v.to - v.from;
    this.setView(p - span * 0.1, p + span * 0.9);
  }

  setView(from, to) {
    this.view = { from, to };
    this.timeline.setView(from, to);
  }

  // setZoom shows 2, 10 or 30 minutes around the playhead (or at).
  setZoom(i, at) {
    this.zoom = Math.max(0, Math.min(ZOOMS_MS.length - 1, i));
    const span = ZOOMS_MS[this.zoom];
    const p = at ?? this.clock.now();
    const end = Math.min(p + span / 2, Date.now() + 30000);
    this.setView(end - span, end);
  }

  // pan moves the view by half its width; past the session's range a
  // new session is opened around the view's middle.
  pan(dir) {
    if (!this.view || !this.session) return;
    const span = this.view.to - this.view.from;
    const from = this.view.from + (dir * span) / 2;
    const to = Math.min(from + span, Date.now() + 30000);
    this.setView(to - span, to);
    const mid = to - span / 2;
    const s = this.session;
    if (to - span < s.from || (to > s.to + 1000 && s.to < Date.now() - 5000)) {
      this.clickAt = performance.now();
      this.awaitFrame = true;
      this.openSession(mid);
    }
  }

  // jump moves the playhead (a click on the timeline, a marker, a key).
  jump(ms, clicked) {
    this.scrubbing = false;
    if (!this.session) return;
    if (clicked) {
      this.clickAt = performance.now();
      this.awaitFrame = true;
    }
    const s = this.session;
    if (ms < s.from || ms > s.to) {
      this.openSession(ms);
      return;
    }
    this.clock.set(ms);
    this.lastP = ms;
    for (const f of this.feeds) f.seek(ms);
    this.tick();
  }

  scrub(ms) {
    if (!this.session) return;
    this.scrubbing = true;
    const s = this.session;
    this.clock.set(Math.max(s.from, Math.min(s.to, ms)));
    this.tick();
  }

  step(dir) {
    if (!this.session) return;
    this.setPlaying(false);
    const fps = this.feeds[0]?.fps || 25;
    this.jump(this.clock.now() + (dir * 1000) / fps, false);
  }

  alertJump(dir) {
    const p = this.clock.now();
    const times = this.timeline.alertTimes();
    const to = dir > 0 ? times.find((x) => x > p + 500) : [...times].reverse().find((x) => x < p - 500);
    if (to !== undefined) this.jump(to, true);
  }

  togglePlay() { this.setPlaying(!this.clock.playing); }

  setPlaying(on) {
    this.clock.setPlaying(on);
    this.relabel();
    this.tick();
  }

  setSpeed(s) {
    this.clock.setSpeed(s);
    this.relabel();
  }

  setLayout(n) {
    this.layout = n;
    this.relabel();
    this.q('.pb-choose').open = true;
    this.renderChoices();
  }

  select(i) {
    this.active = Math.max(0, i);
    this.feeds.forEach((f, j) => f.tile.classList.toggle('active', j === this.active));
  }

  toggleOverlay() {
    this.overlay.on = !this.overlay.on;
    this.q('[data-testid="overlay-toggle"]').setAttribute('aria-pressed', String(this.overlay.on));
    for (const f of this.feeds) f.canvas.hidden = !this.overlay.on;
    if (this.session) this.tick();
  }

  // onWindow watches the link: two windows in a row that took more than
  // half their playing time (at this speed) switch to keyframes only; a
  // full window fetched fast enough while in that mode switches back.
  onWindow(feed, stat) {
    const ratio = stat.ms / (stat.playMs / this.clock.speed);
    if (stat.keyframes) return;
    if (ratio > SLOW) {
      this.slow += 1;
      if (this.slow >= 2 && !this.keyframes) this.setKeyframes(true);
    } else {
      this.slow = 0;
      if (this.keyframes) this.setKeyframes(false);
    }
  }

  setKeyframes(on) {
    this.keyframes = on;
    this.q('[data-testid="pb-keyframes"]').hidden = !on;
    if (!on) {
      // Full video again from just ahead of the playhead.
      const p = this.clock.now() + 1000;
      for (const f of this.feeds) {
        f.abort();
        f.cursor = p;
      }
    }
  }

  // onFrame notes the first picture shown after a click.
  onFrame(feed) {
    if (!this.awaitFrame || !this.session) return;
    const v = feed.video;
    if (v.readyState >= 2 && !v.seeking && feed.has(feed.media(this.clock.now()))) {
      this.awaitFrame = false;
      this.firstFrame = Math.round(performance.now() - this.clickAt);
      this.root.dataset.firstFrameMs = String(this.firstFrame);
    }
  }

  showState(f) {
    f.tile.dataset.state = f.state;
    f.badge.textContent = tEnum('playback.state', f.state);
    f.badge.hidden = f.state === 'playing' || f.state === 'ready';
  }

  showError(e) {
    const p = this.q('[data-testid="pb-error"]');
    p.hidden = !e;
    if (!e) return;
    p.textContent = e.status === 403 ? t('playback.forbidden') : t('error.generic', { message: e.message || String(e) });
  }

  nameOf(c) {
    return this.known.find((k) => k.edge === c.edge && k.camera === c.camera)?.name || c.camera;
  }

  onKey(ev) {
    if (!this.visible || !this.session || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const tag = (ev.target && ev.target.tagName) || '';
    if (['INPUT', 'TEXTAREA', 'SELECT'].includes(tag)) return;
    const p = this.clock.now();
    // A focused button would also take the space (on key up): the page has it.
    if (ev.key === ' ' && document.activeElement?.tagName === 'BUTTON') document.activeElement.blur();
    if (ev.key === ' ') this.togglePlay();
    else if (ev.key === 'ArrowLeft') (ev.shiftKey ? this.jump(p - 10000, true) : this.step(-1));
    else if (ev.key === 'ArrowRight') (ev.shiftKey ? this.jump(p + 10000, true) : this.step(1));
    else if (SPEEDS.includes(Number(ev.key))) this.setSpeed(Number(ev.key));
    else if (ev.key === '[') this.alertJump(-1);
    else if (ev.key === ']') this.alertJump(1);
    else return;
    ev.preventDefault();
  }

  // loadKnown lists every camera (GET /api/v1/edges) for the chooser.
  async loadKnown() {
    try {
      const res = await api('/api/v1/edges');
      this.known = (res.edges ?? []).flatMap((e) => (e.cameras ?? []).map((c) => ({ edge: e.id, camera: c.id, name: c.name || c.id, site: e.site_id || '' })));
      this.renderChoices();
    } catch { /* the chooser stays empty */ }
  }

  renderChoices() {
    const box = this.q('.pb-options');
    const picked = new Set((this.cams ?? []).map((c) => `${c.edge}/${c.camera}`));
    box.replaceChildren(...this.known.map((k) => {
      const id = `${k.edge}/${k.camera}`;
      const box = el('input', { type: 'checkbox', value: id, checked: picked.has(id), 'data-testid': 'pb-camera-option' });
      return el('label', { class: 'pb-option' }, box, el('strong', { text: ` ${k.name}` }), el('span', { class: 'muted', text: ` ${k.site} · ${k.edge}` }));
    }));
    this.q('.pb-choose-note').textContent = t('playback.choose_note', { count: this.layout || 1 });
  }

  applyChoice() {
    const picked = [...this.root.querySelectorAll('[data-testid="pb-camera-option"]')].filter((b) => b.checked).map((b) => b.value);
    const n = this.layout || LAYOUTS.find((x) => x >= picked.length) || 9;
    if (!picked.length) return;
    this.q('.pb-choose').open = false;
    window.vigilPlaybackClickAt = performance.now();
    location.hash = playbackHref(picked.slice(0, n), this.session ? this.clock.now() : Date.now() - 2 * 60000);
  }
}

// bindForms wires the bookmark, evidence and bookmark-search forms.
function bindForms(page) {
  const q = page.q;
  const bm = q('.pb-bookmark');
  const edit = q('.pb-bookmark-edit');
  q('[data-testid="pb-bookmark"]').addEventListener('click', () => {
    const f = page.feeds[page.active];
    if (!f) return;
    page.bookmarkAt = page.clock.now();
    page.bookmarkCam = f.cam;
    q('.pb-bookmark-what').textContent = t('playback.bookmark_what', { camera: f.cam.name || f.cam.camera, time: formatLocal(new Date(page.bookmarkAt)) });
    edit.hidden = false;
    bm.elements.note.focus();
  });
  q('.pb-bookmark-cancel').addEventListener('click', () => { edit.hidden = true; });
  bm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const note = bm.elements.note.value.trim();
    if (!note || !page.bookmarkCam) return;
    try {
      const c = page.bookmarkCam;
      await api('/api/v1/bookmarks', { method: 'POST', body: { edge: c.edge, camera: c.camera, at: new Date(page.bookmarkAt).toISOString(), note } });
      bm.elements.note.value = '';
      edit.hidden = true;
      q('.pb-bookmark-done').textContent = t('playback.bookmark_saved', { time: formatLocal(new Date(page.bookmarkAt)) });
      page.loadTimeline();
    } catch (e) { page.showError(e); }
  });
  bindEvidence(page);
  bindSearch(page);
}

// bindEvidence: police liaisons and admins request the cameras and the
// range in view as an evidence bundle (the Evidence page follows it).
function bindEvidence(page) {
  const q = page.q;
  const form = q('.pb-evidence');
  form.hidden = !page.user || !EVIDENCE_ROLES.includes(page.user.role);
  const range = () => {
    const v = page.view;
    return { from: Math.max(v.from, page.session.from), to: Math.min(v.to, page.session.to, Date.now()) };
  };
  q('[data-testid="pb-evidence"]').addEventListener('click', () => {
    if (!page.session || !page.view) return;
    const r = range();
    q('.pb-evidence-what').textContent = t('playback.evidence_what', {
      cameras: page.cams.map((c) => c.name || c.camera).join(', '), from: formatLocal(new Date(r.from)), to: formatLocal(new Date(r.to)) });
    q('.pb-evidence-edit').hidden = false;
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!page.session) return;
    const r = range();
    try {
      const res = await api('/api/v1/evidence/requests', { method: 'POST', body: {
        case_number: form.elements.case_number.value.trim(), reason: form.elements.reason.value.trim(),
        cameras: page.cams.map((c) => ({ edge: c.edge, camera: c.camera })),
        from: new Date(r.from).toISOString(), to: new Date(r.to).toISOString() } });
      q('.pb-evidence-edit').hidden = true;
      const done = q('.pb-evidence-done');
      done.replaceChildren(t('playback.evidence_done', { id: res?.id || '' }), ' ',
        el('a', { href: '#/evidence', text: t('nav.evidence') }));
    } catch (e) { page.showError(e); }
  });
}

// bindSearch finds bookmarks by their note (GET /api/v1/bookmarks?q=).
function bindSearch(page) {
  const form = page.q('.pb-search');
  const list = page.q('.pb-found');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams({ limit: '50' });
    const text = form.elements.q.value.trim();
    if (text) p.set('q', text);
    try {
      const res = await api(`/api/v1/bookmarks?${p}`);
      const found = res.bookmarks ?? [];
      list.replaceChildren(...found.map((b) => {
        const a = el('a', { href: playbackHref([b], Date.parse(b.at)), 'data-testid': 'pb-bookmark-result',
          text: `${local(b.at)} · ${page.nameOf(b)} · ${b.note}` });
        a.title = t('playback.bookmark_title', { time: local(b.at), user: b.user || '', note: b.note || '' });
        a.addEventListener('click', (e) => {
          if (!page.feeds.some((f) => f.cam.edge === b.edge && f.cam.camera === b.camera)) return;
          e.preventDefault();
          page.jump(Date.parse(b.at), true);
        });
        return el('li', {}, a);
      }));
      if (!found.length) list.replaceChildren(el('li', { class: 'muted', text: t('playback.no_bookmarks') }));
    } catch (e) { page.showError(e); }
  });
}
