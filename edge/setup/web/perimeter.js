// Tripwires and loitering areas on the setup page (issue #20): drawn over
// the camera's picture like zones, listed with their direction, flip and
// delete, and the live preview of the tracks the box follows and the
// crossings it counts (GET /setup/api/perimeter).
//
// A line's "in" side: walking the line from its first point to its last,
// a crossing from the left-hand side to the right-hand side of the
// picture (y grows downwards) is "in" (streams/perimeter). The arrow at
// the middle of each line points to that side.
import { t } from './i18n.js';
import { $, el } from './shared/dom.js';

export const perim = {
  lines: [],   // {name, points: [[x,y]...], direction: in|out|both}
  dwells: [],  // {name, region: [[x,y]...] | line: name, reach, after_s}
  preview: null, // the last GET /setup/api/perimeter answer
  seen: new Set(), // crossings listed already
};

const DIRS = ['in', 'out', 'both'];

// uniqueName is name, or name-2, name-3 … if a line already has it.
function uniqueName(name, taken) {
  if (!taken.includes(name)) return name;
  for (let i = 2; ; i++) if (!taken.includes(`${name}-${i}`)) return `${name}-${i}`;
}

// addLine finishes a drawn line (consecutive repeated points, as a
// double-click leaves, are dropped); false: fewer than two points.
export function addLine(points, name, direction) {
  const pts = points.filter((p, i) => i === 0 || p[0] !== points[i - 1][0] || p[1] !== points[i - 1][1]);
  if (pts.length < 2) return false;
  const n = uniqueName(name || `line-${perim.lines.length + 1}`, perim.lines.map((l) => l.name));
  perim.lines.push({ name: n, points: pts, direction: DIRS.includes(direction) ? direction : 'both' });
  return true;
}

// addDwell finishes a drawn loitering area; false: fewer than three points.
export function addDwell(points, name, afterS) {
  const pts = points.filter((p, i) => i === 0 || p[0] !== points[i - 1][0] || p[1] !== points[i - 1][1]);
  if (pts.length < 3) return false;
  perim.dwells.push({ name: name || `dwell-${perim.dwells.length + 1}`, region: pts, after_s: afterS > 0 ? afterS : 20 });
  return true;
}

// setPerimeter takes a camera's lines and areas as the box runs them.
export function setPerimeter(cam) {
  perim.lines = (cam.lines || []).map((l) => ({ name: l.name, points: l.points, direction: l.direction || 'both' }));
  perim.dwells = (cam.dwell || []).map((d) => ({ ...d }));
  perim.preview = null;
}

// perimeterDraft is the lines and areas as the box's API takes them.
export function perimeterDraft() {
  return {
    lines: perim.lines.map((l) => ({ name: l.name, points: l.points, direction: l.direction })),
    dwell: perim.dwells.map((d) => (d.line ? { name: d.name, line: d.line, reach: d.reach, after_s: d.after_s }
      : { name: d.name, region: d.region, after_s: d.after_s })),
  };
}

// middle is where the line's arrow stands, in pixels of a w×h picture:
// the point halfway along it and the unit direction of its segment there.
function middle(points, w, h) {
  const px = points.map(([x, y]) => [x * w, y * h]);
  const segs = [];
  let total = 0;
  for (let i = 0; i + 1 < px.length; i++) {
    const len = Math.hypot(px[i + 1][0] - px[i][0], px[i + 1][1] - px[i][1]);
    segs.push(len);
    total += len;
  }
  let left = total / 2;
  for (let i = 0; i < segs.length; i++) {
    if (left <= segs[i] || i === segs.length - 1) {
      const [a, b] = [px[i], px[i + 1]];
      const f = segs[i] ? Math.min(1, left / segs[i]) : 0;
      const d = segs[i] ? [(b[0] - a[0]) / segs[i], (b[1] - a[1]) / segs[i]] : [1, 0];
      return { x: a[0] + f * (b[0] - a[0]), y: a[1] + f * (b[1] - a[1]), dx: d[0], dy: d[1] };
    }
    left -= segs[i];
  }
  return { x: px[0][0], y: px[0][1], dx: 1, dy: 0 };
}

// inArrow is the arrow showing a line's "in" side, in pixels: from the
// line's middle, perpendicular to it, towards its right-hand side.
export function inArrow(points, w, h) {
  const m = middle(points, w, h);
  const len = Math.max(24, Math.min(w, h) * 0.08);
  const n = [-m.dy, m.dx]; // right-hand normal on a picture whose y grows downwards
  return { from: [m.x, m.y], to: [m.x + n[0] * len, m.y + n[1] * len], n };
}

function arrow(ctx, from, to, colour) {
  const a = Math.atan2(to[1] - from[1], to[0] - from[0]);
  ctx.strokeStyle = colour;
  ctx.fillStyle = colour;
  ctx.lineWidth = 3;
  ctx.beginPath();
  ctx.moveTo(from[0], from[1]);
  ctx.lineTo(to[0], to[1]);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(to[0], to[1]);
  ctx.lineTo(to[0] - 10 * Math.cos(a - 0.45), to[1] - 10 * Math.sin(a - 0.45));
  ctx.lineTo(to[0] - 10 * Math.cos(a + 0.45), to[1] - 10 * Math.sin(a + 0.45));
  ctx.closePath();
  ctx.fill();
}

function path(ctx, pts, w, h, closed) {
  ctx.beginPath();
  pts.forEach(([x, y], i) => (i ? ctx.lineTo(x * w, y * h) : ctx.moveTo(x * w, y * h)));
  if (closed) ctx.closePath();
}

// drawPerimeter draws the lines (with their "in" arrows), the loitering
// areas, and the preview's tracks and fresh crossings on a w×h canvas.
export function drawPerimeter(ctx, w, h) {
  ctx.font = '14px system-ui, sans-serif';
  for (const d of perim.dwells) {
    if (!d.region) continue;
    path(ctx, d.region, w, h, true);
    ctx.fillStyle = '#ff8c0044';
    ctx.fill();
    ctx.setLineDash([6, 4]);
    ctx.strokeStyle = '#ff8c00';
    ctx.lineWidth = 2;
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = '#ff8c00';
    ctx.fillText(`${d.name} ${d.after_s}s`, d.region[0][0] * w + 4, d.region[0][1] * h - 4);
  }
  for (const l of perim.lines) drawLine(ctx, l, w, h);
  drawPreview(ctx, w, h);
}

function drawLine(ctx, l, w, h) {
  const near = perim.dwells.find((d) => d.line === l.name);
  if (near) { // the loitering band along the line
    path(ctx, l.points, w, h, false);
    ctx.strokeStyle = '#ff8c0055';
    ctx.lineWidth = 2 * (near.reach || 0.05) * Math.min(w, h);
    ctx.lineCap = 'round';
    ctx.stroke();
    ctx.lineCap = 'butt';
  }
  path(ctx, l.points, w, h, false);
  ctx.strokeStyle = '#e040fb';
  ctx.lineWidth = 3;
  ctx.stroke();
  for (const [x, y] of l.points) { ctx.fillStyle = '#e040fb'; ctx.fillRect(x * w - 3, y * h - 3, 6, 6); }
  const a = inArrow(l.points, w, h);
  arrow(ctx, a.from, a.to, '#00e5ff');
  ctx.fillStyle = '#00e5ff';
  ctx.fillText(t('line.inSide'), a.to[0] + a.n[0] * 6 - 6, a.to[1] + a.n[1] * 6 + 5);
  ctx.fillStyle = '#e040fb';
  ctx.fillText(`${l.name} (${t('line.dir.' + l.direction)})`, l.points[0][0] * w + 4, l.points[0][1] * h - 6);
}

// flashFor is how long a crossing stays marked on its line (ms).
const flashFor = 3000;

function drawPreview(ctx, w, h) {
  const p = perim.preview;
  if (!p) return;
  for (const tr of p.tracks || []) {
    ctx.strokeStyle = tr.seen ? '#ffeb3b' : '#ffeb3b88';
    ctx.lineWidth = 2;
    ctx.strokeRect(tr.box[0] * w, tr.box[1] * h, tr.box[2] * w, tr.box[3] * h);
    if ((tr.path || []).length > 1) { path(ctx, tr.path, w, h, false); ctx.stroke(); }
    ctx.fillStyle = '#ffeb3b';
    ctx.fillText('#' + tr.id, tr.box[0] * w + 2, tr.box[1] * h - 4);
  }
  const at = Date.parse(p.at) || Date.now();
  ctx.font = 'bold 22px system-ui, sans-serif';
  for (const c of p.crossings || []) {
    const l = perim.lines.find((x) => x.name === c.line);
    if (!l || at - Date.parse(c.at) > flashFor) continue;
    const m = middle(l.points, w, h);
    ctx.fillStyle = c.direction === 'in' ? '#00e676' : '#ff5252';
    ctx.fillText(crossingText(c), m.x + 8, m.y - 8);
  }
  ctx.font = '14px system-ui, sans-serif';
}

function crossingText(c) { return c.direction === 'in' ? '→ ' + t('line.dir.in') : '← ' + t('line.dir.out'); }

// renderPerimeterList lists the lines and areas with their controls;
// changed is called after each change (redraw).
export function renderPerimeterList(canvas, changed) {
  const list = $('perimeter-list');
  list.textContent = '';
  const redo = () => { renderPerimeterList(canvas, changed); changed(); };
  perim.lines.forEach((l, i) => {
    const dir = el('select', { class: 'l-dir', 'aria-label': t('line.direction') }, ...DIRS.map((d) => el('option', { value: d, text: t('line.dir.' + d) })));
    dir.value = l.direction;
    dir.addEventListener('change', () => { l.direction = dir.value; redo(); });
    const flip = el('button', { type: 'button', class: 'l-flip', text: t('line.flip') });
    flip.addEventListener('click', () => { l.points = [...l.points].reverse(); redo(); });
    const near = el('button', { type: 'button', class: 'l-near', text: t('line.near') });
    near.disabled = perim.dwells.some((d) => d.line === l.name);
    near.addEventListener('click', () => { perim.dwells.push({ name: `${l.name}-loiter`, line: l.name, reach: 0.05, after_s: 20 }); redo(); });
    const del = el('button', { type: 'button', class: 'l-del', text: t('remove') });
    del.addEventListener('click', () => { perim.lines.splice(i, 1); perim.dwells = perim.dwells.filter((d) => d.line !== l.name); redo(); });
    const a = inArrow(l.points, canvas.width, canvas.height);
    const tip = `${(a.to[0] / canvas.width).toFixed(3)},${(a.to[1] / canvas.height).toFixed(3)}`;
    list.append(el('li', { class: 'perimeter-line row', dataset: { line: l.name, direction: l.direction, arrow: tip, points: JSON.stringify(l.points) } },
      el('span', { class: 'swatch line', text: t('line.kind') + ' ' + l.name }), dir, flip, near, del));
  });
  perim.dwells.forEach((d, i) => {
    const after = el('input', { type: 'number', min: '1', step: '1', class: 'd-after', value: String(d.after_s), 'aria-label': t('dwell.after') });
    after.addEventListener('change', () => { d.after_s = Number(after.value); changed(); });
    const del = el('button', { type: 'button', class: 'd-del', text: t('remove') });
    del.addEventListener('click', () => { perim.dwells.splice(i, 1); redo(); });
    const what = d.line ? t('dwell.nearLine', { line: d.line }) : t('dwell.kind');
    list.append(el('li', { class: 'perimeter-dwell row', dataset: { dwell: d.name } },
      el('span', { class: 'swatch dwell', text: `${what} ${d.name}` }), el('label', { class: 'inline' }, after, ' ', t('dwell.seconds')), del));
  });
}

// showPreview takes a GET /setup/api/perimeter answer: new crossings and
// loiterings are listed (newest first, at most 10).
export function showPreview(p) {
  perim.preview = p;
  const list = $('perimeter-events');
  const fresh = [];
  for (const c of p.crossings || []) {
    const key = `c|${c.line}|${c.track}|${c.at}`;
    if (perim.seen.has(key)) continue;
    perim.seen.add(key);
    fresh.push(el('li', { class: 'fresh crossing', dataset: { line: c.line, direction: c.direction, track: String(c.track) },
      text: `${new Date(c.at).toLocaleTimeString()} ${c.line}: ${crossingText(c)} (#${c.track})` }));
  }
  for (const l of p.loiters || []) {
    const key = `l|${l.dwell}|${l.track}|${l.at}`;
    if (perim.seen.has(key)) continue;
    perim.seen.add(key);
    fresh.push(el('li', { class: 'fresh loiter', dataset: { dwell: l.dwell, track: String(l.track) },
      text: `${new Date(l.at).toLocaleTimeString()} ${t('dwell.loitered', { dwell: l.dwell, track: l.track })}` }));
  }
  for (const li of fresh) {
    list.prepend(li);
    setTimeout(() => li.classList.remove('fresh'), flashFor);
  }
  while (list.children.length > 10) list.lastChild.remove();
}
