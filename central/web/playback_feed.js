// One camera of a playback session: a <video> fed through Media Source
// Extensions with windows of the recording (GET /api/v1/playback/sessions/
// {sid}/video?edge=&camera=&from=&to=[&keyframes=1]). Each answer is the
// edge's fMP4 as it is (an initialisation segment and moof/mdat
// fragments) whose decode times count from the session's origin, so the
// media time t of every camera is the wall time origin + t: the page
// keeps the cameras in step by giving every video the same currentTime.
//
// A window is fetched when less than AHEAD_S × speed seconds are buffered
// ahead of the playhead; each fetch is timed against the video it
// brought, and the page switches every camera to keyframes-only windows
// when the link cannot keep up (and back when it can).
const WINDOW_MS = 10000;
const AHEAD_S = 8;
const KEEP_BEHIND_S = 30;
const KEEP_AHEAD_S = 180;
const RETRY_MS = 2000;
const STALL_MS = 4000;      // waited this long for video: the clock goes on without it
const DRIFT_S = 0.1;        // nudged beyond this
const JUMP_S = 1;           // seeked beyond this
const GAP_S = 0.25;         // in a gap (nothing plays): seeked beyond this
const EPS_S = 0.03;

// Feed is one camera's video, its fetches and its buffer.
export class Feed {
  // session: {id, origin (ms), from (ms), to (ms)}; cam: {edge, camera, name};
  // hooks: {onWindow(feed, stat), onFrame(feed), onState(feed)}.
  constructor(session, cam, video, hooks) {
    this.session = session;
    this.cam = cam;
    this.video = video;
    this.hooks = hooks;
    this.ms = new MediaSource();
    this.sb = null;
    this.codec = '';
    this.appends = [];
    this.cursor = null;        // wall ms of the next window to fetch
    this.inflight = null;      // AbortController of the fetch under way
    this.retryAt = 0;
    this.empty = [];           // [from, to] wall ms known to hold no video
    this.fps = 25;
    this.state = 'loading';
    this.waitSince = 0;
    this.closed = false;
    this.video.src = URL.createObjectURL(this.ms);
    this.opened = new Promise((resolve) => this.ms.addEventListener('sourceopen', resolve, { once: true }));
    for (const ev of ['loadeddata', 'seeked', 'canplay']) this.video.addEventListener(ev, () => this.hooks.onFrame(this));
  }

  media(wallMs) { return (wallMs - this.session.origin) / 1000; }

  // has: the buffer holds media time s.
  has(s) {
    const b = this.video.buffered;
    for (let i = 0; i < b.length; i++) if (s >= b.start(i) - EPS_S && s < b.end(i) - EPS_S) return true;
    return false;
  }

  // aheadOf is how many seconds are buffered without a break after s.
  aheadOf(s) {
    const b = this.video.buffered;
    for (let i = 0; i < b.length; i++) if (s >= b.start(i) - EPS_S && s < b.end(i)) return b.end(i) - s;
    return 0;
  }

  // nextVideo is the wall time of the first buffered video after wallMs
  // that is not in a known gap (Infinity: none).
  nextVideo(wallMs) {
    const b = this.video.buffered;
    const s = this.media(wallMs);
    let best = Infinity;
    for (let i = 0; i < b.length; i++) {
      let w = this.session.origin + Math.max(b.start(i), s) * 1000;
      for (let moved = true; moved;) { // Chromium may join ranges across a gap
        moved = false;
        for (const [a, e] of this.empty) if (w >= a && w < e) [w, moved] = [e, true];
      }
      if (w > wallMs && this.has(this.media(w)) && w < best) best = w;
    }
    return best;
  }

  knownEmpty(wallMs) { return this.empty.some(([a, b]) => wallMs >= a && wallMs < b); }

  // waiting: video should be there at wallMs but is not buffered yet
  // (a gap the edge reported or a camera that keeps failing is not waited for).
  waiting(wallMs, recorded) {
    if (this.closed || this.has(this.media(wallMs)) || this.knownEmpty(wallMs) || recorded === false) {
      this.waitSince = 0;
      return false;
    }
    if (!this.waitSince) this.waitSince = performance.now();
    return performance.now() - this.waitSince < STALL_MS;
  }

  // seek moves the fetching to wallMs unless it is buffered already.
  seek(wallMs) {
    const s = this.media(wallMs);
    if (this.has(s)) {
      const ahead = this.aheadOf(s);
      if (this.cursor === null || Math.abs(this.cursor - (wallMs + ahead * 1000)) > 1500) {
        this.abort();
        this.cursor = wallMs + ahead * 1000;
      }
      return;
    }
    this.abort();
    this.cursor = wallMs;
    this.retryAt = 0;
    this.empty = this.empty.filter(([a, b]) => !(wallMs >= a && wallMs < b) || b - a > WINDOW_MS);
  }

  abort() {
    if (this.inflight) this.inflight.abort();
    this.inflight = null;
  }

  // pump fetches the next window when the buffer ahead of wallMs runs
  // low; keyframes() says, when a window is asked for, whether to ask
  // for its keyframes only.
  pump(wallMs, speed, keyframes) {
    if (this.closed || this.inflight || this.cursor === null || performance.now() < this.retryAt) return;
    if (this.cursor >= this.session.to - 100) return;
    const s = this.media(wallMs);
    const buffered = this.has(s) ? this.aheadOf(s) : 0;
    const ahead = (this.cursor - wallMs) / 1000;
    if (buffered >= AHEAD_S * speed && ahead > 0) return;
    if (ahead > AHEAD_S * speed + WINDOW_MS / 1000) return; // fetched far enough (a gap lies between)
    this.fetchWindow(this.cursor, Math.min(this.cursor + WINDOW_MS * Math.max(1, speed / 2), this.cursor + 60000, this.session.to), keyframes());
  }

  async fetchWindow(from, to, keyframes) {
    const ac = new AbortController();
    this.inflight = ac;
    const p = new URLSearchParams({ edge: this.cam.edge, camera: this.cam.camera,
      from: new Date(from).toISOString(), to: new Date(to).toISOString() });
    if (keyframes) p.set('keyframes', '1');
    const t0 = performance.now();
    try {
      const r = await fetch(`/api/v1/playback/sessions/${encodeURIComponent(this.session.id)}/video?${p}`,
        { credentials: 'same-origin', signal: ac.signal });
      if (r.status === 404) {
        this.noteEmpty(from, to);
        this.cursor = to;
        this.setState('gap');
        return;
      }
      if (!r.ok) {
        // 503 with Retry-After: the edge is serving as many windows as it
        // allows; ask again shortly, the buffer covers it. 503 without
        // it: the edge is offline.
        const busy = r.status === 503 && r.headers.get('Retry-After') !== null;
        this.retryAt = performance.now() + (busy ? 1000 * Number(r.headers.get('Retry-After') || 1) : RETRY_MS);
        if (!busy) this.setState(r.status === 503 ? 'offline' : 'error');
        return;
      }
      const body = await r.arrayBuffer();
      if (this.inflight !== ac) return;
      const h = (k) => r.headers.get(k);
      const start = Date.parse(h('X-Vigil-Start')) || from;
      const end = Date.parse(h('X-Vigil-End')) || to;
      const next = Date.parse(h('X-Vigil-Next') || '');
      if (start > from + 200) this.noteEmpty(from, start);
      if (end < to - 1000 && !Number.isFinite(next)) this.noteEmpty(end, Math.max(end + 1000, Math.min(to, from + 1000)));
      const frames = Number(h('X-Vigil-Frames')) || 0;
      const kf = h('X-Vigil-Keyframes-Only') === '1';
      if (!kf && frames > 1 && end > start) this.fps = Math.min(120, Math.max(1, frames / ((end - start) / 1000)));
      this.cursor = Number.isFinite(next) && next > from ? next : Math.max(end, Math.min(to, from + 1000));
      await this.append(body, h('X-Vigil-Codec') || this.codec);
      this.hooks.onWindow(this, { ms: performance.now() - t0, playMs: Math.max(1, end - start), bytes: body.byteLength, keyframes: kf });
    } catch (e) {
      if (e.name === 'AbortError') return;
      this.retryAt = performance.now() + RETRY_MS;
      this.setState(e.name === 'NotSupportedError' ? 'codec' : 'error');
    } finally {
      if (this.inflight === ac) this.inflight = null;
    }
  }

  noteEmpty(a, b) {
    this.empty.push([a, b]);
    if (this.empty.length > 200) this.empty.splice(0, 100);
  }

  // append adds one window's bytes, making the SourceBuffer (or changing
  // its type) for the window's codec.
  async append(buf, codec) {
    await this.opened;
    if (this.closed) return;
    const mime = `video/mp4; codecs="${codec}"`;
    if (!MediaSource.isTypeSupported(mime)) throw new DOMException(`codec ${codec}`, 'NotSupportedError');
    if (!this.sb) {
      this.sb = this.ms.addSourceBuffer(mime);
      this.sb.mode = 'segments';
      this.sb.timestampOffset = 0;
      this.ms.duration = Math.max(1, (this.session.to - this.session.origin) / 1000 + 1);
      this.sb.addEventListener('updateend', () => this.drain());
    } else if (codec !== this.codec && typeof this.sb.changeType === 'function') {
      await this.idle();
      this.sb.changeType(mime);
    }
    this.codec = codec;
    await new Promise((resolve, reject) => {
      this.appends.push({ buf, resolve, reject });
      this.drain();
    });
    if (this.state !== 'playing') this.setState('ready');
    this.hooks.onFrame(this);
  }

  idle() {
    if (!this.sb || !this.sb.updating) return Promise.resolve();
    return new Promise((resolve) => this.sb.addEventListener('updateend', resolve, { once: true }));
  }

  drain() {
    if (!this.sb || this.sb.updating) return;
    if (this.pending) {
      this.pending.resolve();
      this.pending = null;
    }
    if (this.trimBuffer()) return;
    const next = this.appends.shift();
    if (!next) return;
    try {
      this.sb.appendBuffer(next.buf);
      this.pending = next;
    } catch (e) {
      if (e.name === 'QuotaExceededError') {
        this.appends.unshift(next);
        this.trimBuffer(true);
        return;
      }
      next.reject(e);
    }
  }

  // trimBuffer drops what lies far behind or far ahead of the playhead;
  // true when a removal is under way.
  trimBuffer(hard = false) {
    const b = this.video.buffered;
    const s = this.target; // the page's playhead (the video may not be there yet)
    if (!this.sb || b.length === 0 || s === undefined) return false;
    const keep = hard ? 5 : KEEP_BEHIND_S;
    if (b.start(0) < s - keep * 2 || (hard && b.start(0) < s - keep)) {
      this.sb.remove(0, s - keep);
      return true;
    }
    if (b.end(b.length - 1) > s + KEEP_AHEAD_S * 1.5) {
      this.sb.remove(s + KEEP_AHEAD_S, Infinity);
      return true;
    }
    return false;
  }

  // follow keeps the video at the page's playhead: seeks when far off,
  // nudges its rate when a little off, plays or pauses with the page.
  follow(wallMs, playing, speed) {
    const v = this.video;
    if (this.closed || !this.sb) return;
    const target = this.media(wallMs);
    this.target = target;
    const drift = v.currentTime - target;
    // Chromium joins buffered ranges across a short gap (it shows the
    // last picture through it): the gaps the edge reported count too.
    const here = this.has(target) && !this.knownEmpty(wallMs);
    this.setState(!here ? (this.inflight || this.cursor !== null && !this.knownEmpty(wallMs) ? 'loading' : 'gap') : playing ? 'playing' : 'ready');
    if (!playing || !here) {
      // Paused, or nothing to play here: the picture stays, the time follows.
      if (!v.paused) v.pause();
      if (Math.abs(drift) > (playing ? GAP_S : 0.01)) v.currentTime = target;
      return;
    }
    if (Math.abs(drift) > JUMP_S) {
      v.currentTime = target;
    } else if (Math.abs(drift) > DRIFT_S) {
      v.playbackRate = speed * (drift > 0 ? 0.9 : 1.1);
    } else if (Math.abs(drift) < EPS_S) {
      v.playbackRate = speed;
    }
    if (v.paused) v.play().catch(() => {});
  }

  setState(s) {
    if (this.state === s) return;
    this.state = s;
    this.hooks.onState(this);
  }

  close() {
    this.closed = true;
    this.abort();
    for (const a of this.appends) a.resolve();
    this.appends = [];
    try { this.video.pause(); } catch { /* gone */ }
    URL.revokeObjectURL(this.video.src);
    this.video.removeAttribute('src');
    this.video.load();
  }
}
