// What the playback page draws over each video when the overlay is on
// (GET /api/v1/playback/sessions/{sid}/overlay: wire.Overlay, points in
// 0..1 of the picture): the camera's zones and lines, and the motion
// boxes the analyser found within BOX_S of the playhead.
const BOX_S = 0.25;
const BEFORE_MS = 60000;
const AFTER_MS = 4 * 60000;
const RETRY_MS = 10000;

export class Overlay {
  constructor() {
    this.on = false;
    this.data = new Map(); // "edge/camera" → {from, to, overlay, until}
  }

  reset() { this.data.clear(); }

  draw(feeds, p, session) {
    for (const f of feeds) {
      const key = `${f.cam.edge}/${f.cam.camera}`;
      const d = this.data.get(key);
      const stale = !d || (d.overlay && (p < d.from || (p > d.to - 30000 && d.to < session.to))) || (!d.overlay && performance.now() > d.until);
      if (stale && !d?.loading) this.load(key, f, p, session);
      this.paint(f, d?.overlay, p);
    }
  }

  async load(key, f, p, session) {
    const from = Math.max(session.from, p - BEFORE_MS);
    const to = Math.min(session.to, p + AFTER_MS);
    if (to <= from) return;
    const prev = this.data.get(key);
    this.data.set(key, { ...prev, loading: true });
    const q = new URLSearchParams({ edge: f.cam.edge, camera: f.cam.camera, from: new Date(from).toISOString(), to: new Date(to).toISOString() });
    try {
      const r = await fetch(`/api/v1/playback/sessions/${encodeURIComponent(session.id)}/overlay?${q}`, { credentials: 'same-origin' });
      if (!r.ok) throw new Error(String(r.status));
      const overlay = await r.json();
      overlay.times = (overlay.boxes ?? []).map((b) => Date.parse(b.t));
      this.data.set(key, { from, to, overlay });
    } catch {
      this.data.set(key, { from, to, overlay: null, until: performance.now() + RETRY_MS });
    }
  }

  // paint draws on the canvas laid over the picture's area of the video
  // (object-fit: contain leaves bands at its sides or top and bottom).
  paint(f, overlay, p) {
    const c = f.canvas;
    const v = f.video;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(v.clientWidth * dpr);
    const h = Math.round(v.clientHeight * dpr);
    if (c.width !== w || c.height !== h) {
      c.width = w;
      c.height = h;
    }
    const g = c.getContext('2d');
    g.clearRect(0, 0, w, h);
    if (!overlay || !v.videoWidth) return;
    const scale = Math.min(w / v.videoWidth, h / v.videoHeight);
    const pw = v.videoWidth * scale;
    const ph = v.videoHeight * scale;
    const ox = (w - pw) / 2;
    const oy = (h - ph) / 2;
    const X = (x) => ox + x * pw;
    const Y = (y) => oy + y * ph;
    g.lineWidth = 2 * dpr;
    g.strokeStyle = 'rgba(88, 166, 255, 0.9)';
    g.fillStyle = 'rgba(88, 166, 255, 0.12)';
    for (const z of overlay.zones ?? []) {
      if (!z.points?.length) continue;
      g.beginPath();
      z.points.forEach((pt, i) => (i ? g.lineTo(X(pt.x), Y(pt.y)) : g.moveTo(X(pt.x), Y(pt.y))));
      g.closePath();
      g.fill();
      g.stroke();
    }
    g.strokeStyle = 'rgba(245, 197, 66, 0.95)';
    for (const l of overlay.lines ?? []) {
      g.beginPath();
      g.moveTo(X(l.a.x), Y(l.a.y));
      g.lineTo(X(l.b.x), Y(l.b.y));
      g.stroke();
    }
    g.strokeStyle = 'rgba(229, 72, 77, 0.95)';
    (overlay.boxes ?? []).forEach((frame, i) => {
      if (Math.abs(overlay.times[i] - p) > BOX_S * 1000) return;
      for (const b of frame.boxes ?? []) g.strokeRect(X(b.x), Y(b.y), b.w * pw, b.h * ph);
    });
    c.dataset.boxes = String((overlay.boxes ?? []).filter((_, i) => Math.abs(overlay.times[i] - p) <= BOX_S * 1000).length);
  }
}
