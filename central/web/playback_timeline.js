// The playback page's timeline: one bar per camera over the range in
// view, with the recorded spans, the gaps (drawn apart, each element
// carrying data-start/data-end), the alerts coloured by severity, gate
// events and bookmarks, and the playhead. Drag to scrub, click to jump,
// click a marker to jump to its moment. Everything is set as text or
// attributes, never as HTML.
import { t, tEnum } from './i18n.js';
import { formatLocal, local } from './localtime.js';
import { el } from './shared/dom.js';

const TICKS = 6;

export class Timeline {
  // root: where to draw; hooks: {jump(ms), scrub(ms), select(i)}.
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.view = { from: 0, to: 1 };
    this.cams = [];      // [{cam, data}] data: a camera of GET …/timeline
    this.heads = [];
    this.ruler = el('div', { class: 'pb-ruler', 'aria-hidden': 'true' });
    this.rows = el('div', { class: 'pb-rows' });
    root.replaceChildren(this.ruler, this.rows);
    this.drag = null;
  }

  setView(from, to) {
    this.view = { from, to };
    this.render();
  }

  setCameras(cams) {
    this.cams = cams.map((cam) => ({ cam, data: null }));
    this.render();
  }

  // setData takes GET /api/v1/playback/sessions/{sid}/timeline.
  setData(res) {
    for (const c of this.cams) {
      c.data = (res.cameras ?? []).find((x) => x.edge === c.cam.edge && x.camera === c.cam.camera) ?? null;
    }
    this.render();
  }

  pct(ms) { return ((ms - this.view.from) / Math.max(1, this.view.to - this.view.from)) * 100; }

  place(node, a, b) {
    const l = Math.max(0, this.pct(a));
    const r = Math.min(100, this.pct(b ?? a));
    node.hidden = r < 0 || l > 100 || (b !== undefined && r <= l);
    node.style.left = `${l}%`;
    if (b !== undefined) node.style.width = `${Math.max(0.2, r - l)}%`;
  }

  render() {
    const span = this.view.to - this.view.from;
    this.ruler.replaceChildren(...Array.from({ length: TICKS + 1 }, (_, i) => {
      const ms = this.view.from + (span * i) / TICKS;
      const tick = el('span', { class: 'pb-tick', text: formatLocal(new Date(ms)).slice(span > 6 * 3600e3 ? 5 : 11) });
      tick.style.left = `${(i / TICKS) * 100}%`;
      return tick;
    }));
    this.heads = [];
    this.rows.replaceChildren(...this.cams.map((c, i) => this.row(c, i)));
  }

  row(c, i) {
    const name = c.data?.name || c.cam.name || c.cam.camera;
    const label = el('button', { type: 'button', class: 'pb-row-name ghost', text: name, title: `${c.cam.edge}/${c.cam.camera}` });
    label.addEventListener('click', () => this.hooks.select(i));
    const bar = el('div', { class: 'pb-bar', 'data-testid': 'timeline-bar', dataset: { camera: `${c.cam.edge}/${c.cam.camera}` } });
    const d = c.data;
    for (const s of d?.spans ?? []) this.item(bar, 'pb-span', s.start, s.end, 'timeline-span');
    for (const g of d?.gaps ?? []) {
      const n = this.item(bar, 'pb-gap', g.start, g.end, 'timeline-gap', t('playback.gap', { from: local(g.start), to: local(g.end) }));
      n.dataset.start = g.start;
      n.dataset.end = g.end;
    }
    for (const e of d?.events ?? []) {
      this.mark(bar, 'pb-event', e.time, 'timeline-event', `${local(e.time)} ${tEnum('event', e.kind)} ${e.source || ''}`);
    }
    for (const b of d?.bookmarks ?? []) {
      const n = this.mark(bar, 'pb-bm', b.at, 'timeline-bookmark', t('playback.bookmark_title', { time: local(b.at), user: b.user || '', note: b.note || '' }));
      n.dataset.bookmarkId = b.id;
    }
    for (const a of d?.alerts ?? []) {
      const sev = ['red', 'yellow', 'green'].includes(a.severity) ? a.severity : 'unknown';
      const n = this.mark(bar, `pb-alert sev-${sev}`, a.time, 'timeline-alert', `${local(a.time)} ${tEnum('sev', sev)} · ${tEnum('kind', a.kind)} · ${tEnum('state', a.state || 'raised')}`);
      n.dataset.alertId = a.id;
      n.dataset.severity = sev;
    }
    const head = el('div', { class: 'pb-head', 'aria-hidden': 'true' });
    this.heads.push(head);
    bar.append(head);
    this.bindBar(bar);
    const note = d?.error ? el('span', { class: 'pb-row-error', 'data-testid': 'timeline-error', text: t('playback.timeline_error', { error: d.error }) }) : null;
    return el('div', { class: 'pb-row', 'data-testid': 'timeline-row', dataset: { camera: `${c.cam.edge}/${c.cam.camera}` } }, label, bar, note);
  }

  item(bar, cls, a, b, testid, title) {
    const n = el('div', { class: cls, 'data-testid': testid, title });
    this.place(n, Date.parse(a), Date.parse(b));
    bar.append(n);
    return n;
  }

  mark(bar, cls, at, testid, title) {
    const n = el('button', { type: 'button', class: `pb-mark ${cls}`, 'data-testid': testid, title, 'aria-label': title, dataset: { time: at } });
    this.place(n, Date.parse(at));
    bar.append(n);
    return n;
  }

  // bindBar: a marker jumps to its moment; elsewhere a press jumps and a
  // drag scrubs, with the jump made when the button is let go.
  bindBar(bar) {
    const at = (ev) => {
      const r = bar.getBoundingClientRect();
      const f = Math.min(1, Math.max(0, (ev.clientX - r.left) / Math.max(1, r.width)));
      return this.view.from + f * (this.view.to - this.view.from);
    };
    bar.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0) return;
      const m = ev.target.closest('.pb-mark');
      if (m) {
        ev.preventDefault();
        this.hooks.jump(Date.parse(m.dataset.time));
        return;
      }
      bar.setPointerCapture?.(ev.pointerId);
      this.drag = { bar };
      this.hooks.scrub(at(ev));
    });
    bar.addEventListener('pointermove', (ev) => { if (this.drag?.bar === bar) this.hooks.scrub(at(ev)); });
    const end = (ev) => {
      if (this.drag?.bar !== bar) return;
      this.drag = null;
      this.hooks.jump(at(ev));
    };
    bar.addEventListener('pointerup', end);
    bar.addEventListener('pointercancel', () => { this.drag = null; });
  }

  // setPlayhead moves the playhead lines (cheap: called every tick).
  setPlayhead(ms) {
    for (const h of this.heads) this.place(h, ms);
  }

  // recorded: true when camera i has a span at ms, false in a gap,
  // undefined when the timeline does not say.
  recorded(i, ms) {
    const d = this.cams[i]?.data;
    if (!d || d.error) return undefined;
    if ((d.gaps ?? []).some((g) => ms >= Date.parse(g.start) && ms < Date.parse(g.end))) return false;
    if ((d.spans ?? []).some((s) => ms >= Date.parse(s.start) && ms < Date.parse(s.end))) return true;
    return undefined;
  }

  // alertTimes are every camera's alert moments, in order.
  alertTimes() {
    return this.cams.flatMap((c) => (c.data?.alerts ?? []).map((a) => Date.parse(a.time))).filter(Number.isFinite).sort((a, b) => a - b);
  }
}
