// The installer's setup page: plain ES module, no build step.
import { t, applyI18n, setLang, currentLang } from './i18n.js';
import { $, el } from './shared/dom.js';
import { button, clone } from './widgets.js';
import { initSensors, loadSensors, rerenderSensors } from './sensors.js';
import { initGB, loadGB, rerenderGB } from './gb28181.js';
import { perim, addLine, addDwell, setPerimeter, perimeterDraft, drawPerimeter, renderPerimeterList, showPreview } from './perimeter.js';

const kindZh = {
  auth: '用户名或密码错误', auth_missing: '摄像机需要用户名和密码', unreachable: '无法连接摄像机',
  not_rtsp: '不是 RTSP 摄像机', not_found: '摄像机上没有这个码流路径', unsupported_codec: '不支持的编码',
  no_video: '摄像机没有发送可解码的画面', bad_url: '不是 RTSP 地址', refused: '摄像机拒绝了请求',
};

async function api(path, body) {
  const res = await fetch('/setup/api/' + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok && !data.error) data.error = res.status + ' ' + res.statusText;
  data.httpStatus = res.status;
  return data;
}

function show(node, text, cls) {
  node.textContent = text;
  if (cls !== undefined) node.className = cls;
}

// ---- login ----
$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const r = await api('login', { code: $('code').value });
  if (r.httpStatus !== 200) {
    const why = r.httpStatus === 401 ? t('login.wrong') : r.httpStatus === 429 ? t('login.locked', { s: r.retry_after }) : r.error;
    show($('login-error'), why);
    return;
  }
  $('login').hidden = true;
  $('steps').hidden = false;
  await refreshStatus();
  loadGates();
  watchGates();
  loadGatesForm();
  loadSensors();
  loadGB();
});

let status = {};

async function refreshStatus() {
  const s = await api('status');
  if (s.error) return;
  status = s;
  show($('status-line'), t('status.line', { edge: s.edge_id, central: t(s.central_connected ? 'status.connected' : 'status.disconnected') }));
  if (s.config_revision) $('status-line').textContent += ' (config ' + s.config_revision + ')';
  $('status-line').dataset.revision = s.config_revision || '';
  const st = $('enrol-state');
  st.dataset.enrolled = String(!!s.enrolled);
  if (s.enrolled) {
    show(st, t('enrol.done', { edge: s.edge_id, site: s.site_id }) + (s.entrance ? ' — ' + s.entrance : ''), 'green');
  } else {
    show(st, t('enrol.not'), 'red');
  }
  if (s.entrance && !$('enrol-entrance').value) $('enrol-entrance').value = s.entrance;
  if (s.time_zone) $('enrol-tz').value = s.time_zone;
  if (s.ntp && s.ntp.length && !$('enrol-ntp').value) $('enrol-ntp').value = s.ntp.join(', ');
  const sel = $('zone-camera');
  if (!sel.options.length) {
    const none = document.createElement('option');
    none.value = '';
    none.textContent = '—';
    sel.append(none);
    for (const c of s.cameras || []) {
      const o = document.createElement('option');
      o.value = c.id;
      o.textContent = c.name ? `${c.name} (${c.id})` : c.id;
      sel.append(o);
    }
  }
}

// ---- enrolment ----
$('enrol-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const out = $('enrol-result');
  show(out, t('enrol.working'), 'result');
  const r = await api('enrol', {
    central: $('enrol-central').value, token: $('enrol-token').value, entrance: $('enrol-entrance').value,
    time_zone: $('enrol-tz').value, ntp: [$('enrol-ntp').value], again: $('enrol-again').checked,
  });
  if (r.error) { show(out, r.error, 'result bad'); return; }
  show(out, r.message, r.restart_needed ? 'result bad' : 'result ok');
  $('enrol-token').value = '';
  setTimeout(refreshStatus, 1500);
  refreshStatus();
});

// ---- cameras ----
$('discover').addEventListener('click', async () => {
  const list = $('devices');
  list.textContent = '…';
  const r = await api('discover', {});
  list.textContent = '';
  if (r.error) { list.textContent = r.error; return; }
  if (!r.devices.length) { list.textContent = t('cam.none'); return; }
  for (const d of r.devices) {
    const li = document.createElement('li');
    li.textContent = `${d.name || d.endpoint} — ${d.hardware || ''} ${d.host} `;
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = t('cam.use');
    b.addEventListener('click', () => { $('probe-url').value = d.rtsp; });
    li.append(b);
    list.append(li);
  }
});

let snapshot = null; // Image of the last good probe or of the chosen camera

$('probe-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const out = $('probe-result');
  show(out, t('cam.probing'), 'result');
  const r = await api('probe', { url: $('probe-url').value, user: $('probe-user').value, password: $('probe-password').value });
  out.textContent = '';
  if (!r.ok) {
    let msg = r.error || 'error';
    if (currentLang() === 'zh-CN' && kindZh[r.kind]) msg = kindZh[r.kind] + '（' + msg + '）';
    show(out, msg, 'result bad');
    out.dataset.kind = r.kind || '';
    return;
  }
  out.className = 'result ok';
  out.dataset.kind = '';
  const p = document.createElement('p');
  p.textContent = t('cam.ok', { codec: r.codec, width: r.width, height: r.height, fps: r.fps }) + (r.auth_required ? ' (' + t('cam.auth') + ', ' + r.auth_method + ')' : '');
  out.append(p);
  if (r.snapshot) {
    const img = new Image();
    img.alt = 'snapshot';
    img.src = r.snapshot;
    img.id = 'probe-snapshot';
    out.append(img);
    img.onload = () => { snapshot = img; drawZones(); };
  }
});

// ---- zones: click to add corners on the snapshot ----
const canvas = $('zone-canvas');
const ctx = canvas.getContext('2d');
let zones = [];     // {name, points: [[x,y]...], sensitivity, mask} closed
let current = [];   // points of the polygon or line being drawn (normalised)
let order = [];     // kinds of the shapes drawn, last last (undo)

function drawZones() {
  if (snapshot) {
    canvas.width = snapshot.naturalWidth;
    canvas.height = snapshot.naturalHeight;
    ctx.drawImage(snapshot, 0, 0);
  } else {
    ctx.fillStyle = '#222';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }
  const poly = (pts, closed, colour) => {
    if (!pts.length) return;
    ctx.beginPath();
    pts.forEach(([x, y], i) => (i ? ctx.lineTo(x * canvas.width, y * canvas.height) : ctx.moveTo(x * canvas.width, y * canvas.height)));
    if (closed) { ctx.closePath(); ctx.fillStyle = colour + '55'; ctx.fill(); }
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.stroke();
    for (const [x, y] of pts) { ctx.fillStyle = colour; ctx.fillRect(x * canvas.width - 3, y * canvas.height - 3, 6, 6); }
  };
  for (const z of zones) poly(z.points, true, z.mask ? '#3070ff' : '#20c060');
  drawPerimeter(ctx, canvas.width, canvas.height);
  poly(current, false, '#ffcc00');
}

// perimeterChanged redraws after a line or area changed.
function perimeterChanged() { renderPerimeterList(canvas, drawZones); drawZones(); }

canvas.addEventListener('click', (e) => {
  const r = canvas.getBoundingClientRect();
  const x = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
  const y = Math.min(1, Math.max(0, (e.clientY - r.top) / r.height));
  current.push([Math.round(x * 1000) / 1000, Math.round(y * 1000) / 1000]);
  drawZones();
});

// finishShape ends the shape being drawn as the chosen kind: a zone or
// mask (three corners or more), a tripwire line (two points or more), a
// loitering area (three corners or more).
function finishShape() {
  const kind = $('zone-kind').value;
  const name = $('zone-name').value.trim();
  if (kind === 'line') {
    if (!addLine(current, name, $('line-dir').value)) return;
  } else if (kind === 'dwell') {
    if (!addDwell(current, name, Number($('dwell-after').value))) return;
  } else {
    const pts = current.filter((p, i) => i === 0 || p[0] !== current[i - 1][0] || p[1] !== current[i - 1][1]);
    if (pts.length < 3) return;
    const mask = kind === 'mask';
    zones.push({ name: mask ? '' : (name || `zone-${zones.length + 1}`), points: pts, mask, sensitivity: mask ? 0 : Number($('zone-sens').value) });
  }
  order.push(kind === 'line' || kind === 'dwell' ? kind : 'zone');
  current = [];
  perimeterChanged();
}

$('zone-close').addEventListener('click', finishShape);
canvas.addEventListener('dblclick', (e) => { e.preventDefault(); finishShape(); });
document.addEventListener('keydown', (e) => {
  if (e.key !== 'Enter' || !current.length || ['BUTTON', 'TEXTAREA', 'SELECT'].includes(e.target.tagName)) return;
  e.preventDefault();
  finishShape();
});

// The kind chosen shows its own settings: a line's direction, an area's time.
function kindChanged() {
  const kind = $('zone-kind').value;
  $('line-opts').hidden = kind !== 'line';
  $('dwell-opts').hidden = kind !== 'dwell';
  $('zone-sens').closest('label').hidden = kind !== 'zone';
  $('zone-close').textContent = t(kind === 'line' ? 'line.finish' : 'zone.close');
}
$('zone-kind').addEventListener('change', kindChanged);

$('zone-undo').addEventListener('click', () => {
  if (current.length) current.pop();
  else {
    const kind = order.pop();
    if (kind === 'line') perim.lines.pop(); else if (kind === 'dwell') perim.dwells.pop(); else zones.pop();
  }
  perimeterChanged();
});

$('zone-save').addEventListener('click', async () => {
  show($('zone-error'), '');
  $('zone-yaml').textContent = '';
  if (!zones.filter((z) => !z.mask).length) { show($('zone-error'), t('zone.none')); return; }
  const r = await api('zones', draft());
  if (r.error) { show($('zone-error'), r.error); return; }
  $('zone-yaml').textContent = t('zone.ok') + '\n\n' + r.yaml;
});

// draft is what the page has drawn, as the box's API takes it.
function draft() {
  const zs = zones.filter((z) => !z.mask).map((z) => ({ name: z.name, points: z.points, sensitivity: z.sensitivity === 0.5 ? 0 : z.sensitivity }));
  const ms = zones.filter((z) => z.mask).map((z) => z.points);
  return { camera: $('zone-camera').value, zones: zs, masks: ms, ...perimeterDraft() };
}

// Choosing a configured camera shows its live picture and the zones it runs.
$('zone-camera').addEventListener('change', () => {
  const id = $('zone-camera').value;
  $('preview-img').hidden = true;
  if (!id) return;
  const cam = (status.cameras || []).find((c) => c.id === id) || {};
  zones = (cam.zones || []).map((z) => ({ name: z.name, points: z.points, sensitivity: z.sensitivity || 0.5, mask: false }))
    .concat((cam.masks || []).map((m) => ({ name: '', points: m, mask: true })));
  current = [];
  order = [];
  setPerimeter(cam);
  renderPerimeterList(canvas, drawZones);
  const img = new Image();
  img.alt = 'snapshot';
  img.onload = () => { snapshot = img; perimeterChanged(); };
  img.src = '/setup/api/snapshot?camera=' + encodeURIComponent(id) + '&t=' + Date.now();
  drawZones();
});

$('zone-apply').addEventListener('click', async () => {
  show($('zone-error'), '');
  show($('zone-saved'), '');
  const d = draft();
  if (!d.camera) { show($('zone-error'), t('zone.nocam')); return; }
  const r = await api('zones/save', d);
  if (r.error) { show($('zone-error'), r.error); return; }
  const out = $('zone-saved');
  show(out, t('zone.saved', { rev: r.revision, applied: r.applied }) + (r.message ? ' ' + r.message : ''), 'result ok');
  out.dataset.revision = r.revision;
  await refreshStatus();
});

// Motion preview: the detector's output with the drafted zones, about
// twice a second, laid over the picture (red: moving; dim: not watched).
let previewing = false;
function previewLoop() {
  const img = $('preview-img');
  if (!$('zone-preview').checked || !$('zone-camera').value) { previewing = false; img.hidden = true; return; }
  previewing = true;
  const started = Date.now();
  const next = () => setTimeout(previewLoop, Math.max(0, 500 - (Date.now() - started)));
  img.onload = () => { img.hidden = false; img.dataset.loads = String(Number(img.dataset.loads || 0) + 1); next(); };
  img.onerror = () => { next(); };
  const d = draft();
  img.src = '/setup/api/preview?camera=' + encodeURIComponent(d.camera) + '&draft=' + encodeURIComponent(JSON.stringify({ zones: d.zones, masks: d.masks })) + '&t=' + started;
}
$('zone-preview').addEventListener('change', () => {
  if (!previewing) previewLoop();
  if (!tracking) trackLoop();
});

// Perimeter preview: the tracks the box follows with the drafted lines
// and areas, and the crossings it counts, about twice a second, drawn
// over the picture; the crossings are listed as they come.
let tracking = false;
async function trackLoop() {
  const out = $('perimeter-status');
  const d = draft();
  if (!$('zone-preview').checked || !d.camera) { tracking = false; perim.preview = null; drawZones(); return; }
  tracking = true;
  const started = Date.now();
  let wait = 500;
  try {
    const r = await fetch('/setup/api/perimeter?camera=' + encodeURIComponent(d.camera) + '&draft=' + encodeURIComponent(JSON.stringify({ lines: d.lines, dwell: d.dwell })),
      { credentials: 'same-origin' });
    const p = await r.json().catch(() => ({}));
    if (r.ok) {
      showPreview(p);
      show(out, '', 'hint');
      out.dataset.loads = String(Number(out.dataset.loads || 0) + 1);
      drawZones();
    } else {
      show(out, r.status === 501 ? t('line.noPreview') : (p.error || r.status + ' ' + r.statusText), 'hint');
      wait = r.status === 501 ? 5000 : 1000;
    }
  } catch { wait = 2000; /* the box restarts */ }
  setTimeout(trackLoop, Math.max(0, wait - (Date.now() - started)));
}

// ---- gates: their state, and each event the moment the box hears it ----
let events = null; // the EventSource of gate events

function watchGates() {
  if (events) events.close();
  const es = new EventSource('/setup/api/gates/events');
  events = es;
  es.addEventListener('gate', (e) => {
    const ev = JSON.parse(e.data);
    const li = document.createElement('li');
    li.className = 'fresh';
    li.dataset.gate = ev.gate;
    li.dataset.kind = ev.kind;
    li.textContent = `${new Date(ev.time).toLocaleTimeString()} ${ev.gate}: ${ev.kind}${ev.device ? ' (' + ev.device + ')' : ''}`;
    const list = $('gate-events');
    list.prepend(li);
    while (list.children.length > 20) list.lastChild.remove();
    setTimeout(() => li.classList.remove('fresh'), 2000);
    loadGates();
    setTimeout(loadGates, 500); // the gate's state follows its event
  });
}

async function loadGates() {
  try {
    const g = await api('gates/state');
    const list = $('gates');
    list.textContent = '';
    if (!g.gates || !g.gates.length) list.textContent = t('gate.none');
    for (const s of g.gates || []) {
      const li = document.createElement('li');
      const heard = (s.door && s.door !== 'unknown') || s.last_grant;
      li.className = heard ? 'green' : 'red';
      li.textContent = `${s.name || s.gate}: ${s.door}${s.last_grant ? ' · ' + new Date(s.last_grant).toLocaleTimeString() : ''}`;
      list.append(li);
    }
  } catch (e) { /* the box restarts: the next event reloads */ }
}

// ---- self-test ----
$('selftest').addEventListener('click', async () => {
  show($('selftest-summary'), t('test.running'), '');
  $('selftest-checks').textContent = '';
  const r = await api('selftest', {});
  if (r.error && !r.checks) { show($('selftest-summary'), r.error, 'red'); return; }
  const red = r.checks.filter((c) => c.status !== 'green');
  show($('selftest-summary'), red.length ? t('test.red', { n: red.length }) : t('test.green'), red.length ? 'red' : 'green');
  $('selftest-summary').dataset.ok = String(r.ok);
  for (const c of r.checks) {
    const li = document.createElement('li');
    li.className = c.status;
    li.dataset.check = c.id;
    li.textContent = c.reason;
    $('selftest-checks').append(li);
  }
  refreshStatus();
});

$('finish').addEventListener('click', async () => {
  const r = await api('finish', {});
  if (r.closed) document.body.textContent = t('finished');
});

$('lang').value = currentLang();
$('lang').addEventListener('change', (e) => {
  setLang(e.target.value);
  if (model) { collect(); renderGatesForm(); }
  rerenderSensors();
  rerenderGB();
  kindChanged();
  perimeterChanged();
});
applyI18n(document); // the stored or the browser's language; a choice is stored only when made
kindChanged();
drawZones();

// ---- gates step: gates, cameras, arming, and their inputs, saved as a revision ----
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const ROLES = ['door', 'button', 'grant', 'tamper', 'smoke', 'gas', 'water_leak', 'presence'];
const BIASES = ['', 'pull-up', 'pull-down', 'disabled'];
let gform = { gates: [], webhook: [], mqtt: null, gpio: null }; // as the box runs it
let model = null; // the form being edited

const labelled = (key, input, cls) => el('label', { class: cls }, el('span', { text: t(key) }), ' ', input);

async function loadGatesForm() {
  const r = await api('gates/config');
  if (r.error) { show($('gates-result'), r.error, 'result bad'); return; }
  delete r.httpStatus;
  gform = r;
  model = clone(r);
  renderGatesForm();
}

function gateIDs() { return (model.gates || []).map((g) => g.id).filter(Boolean); }

function gateSelect(value, field) {
  const sel = el('select', { dataset: { field } });
  sel.append(el('option', { value: '', text: '—' }));
  for (const id of gateIDs()) sel.append(el('option', { value: id, text: id }));
  sel.value = value || '';
  return sel;
}

function renderGatesForm() {
  renderGates();
  renderInputs();
}

function renderGates() {
  const cams = status.cameras || [];
  const gl = $('gate-forms');
  gl.textContent = '';
  model.gates.forEach((g, i) => {
    const f = `gates[${i}]`;
    const fs = el('fieldset', { class: 'gate-form', dataset: { index: String(i), gate: g.id || '', field: f } });
    fs.append(el('legend', { text: t('gate.n', { n: i + 1 }) + (g.name ? ' — ' + g.name : '') }));
    const id = el('input', { class: 'g-id', value: g.id, placeholder: 'north-gate', dataset: { field: f + '.id' }, autocomplete: 'off' });
    // The inputs below offer the gates by ID: keep them in step as it is typed.
    id.addEventListener('input', () => { fs.dataset.gate = id.value.trim(); collect(); renderInputs(); });
    fs.append(el('div', { class: 'row' }, labelled('gate.id', id, 'inline'),
      labelled('gate.name', el('input', { class: 'g-name', value: g.name, placeholder: t('gate.namePh'), dataset: { field: f + '.name' } }), 'inline')));
    const camBox = el('div', { class: 'g-cams row', dataset: { field: f + '.cameras' } }, el('span', { text: t('gate.cameras') }));
    if (!cams.length) camBox.append(el('span', { class: 'hint', text: t('gate.noCameras') }));
    for (const c of cams) {
      camBox.append(el('label', { class: 'inline' }, el('input', { type: 'checkbox', value: c.id, checked: (g.cameras || []).includes(c.id) }), ' ', c.name ? `${c.name} (${c.id})` : c.id));
    }
    fs.append(camBox);
    const arming = el('select', { class: 'g-arming', dataset: { field: f + '.arming' } },
      ...['always', 'schedule', 'never'].map((a) => el('option', { value: a, text: t('gate.arming.' + a) })));
    arming.value = g.arming || 'never';
    arming.addEventListener('change', () => { collect(); if (arming.value === 'schedule' && !model.gates[i].schedule.length) model.gates[i].schedule.push(newWindow()); renderGatesForm(); });
    fs.append(el('div', { class: 'row' }, labelled('gate.armed', arming, 'inline'),
      labelled('gate.tz', el('input', { class: 'g-tz', value: g.time_zone || 'Asia/Shanghai', dataset: { field: f + '.arming.time_zone' } }), 'inline')));
    if (g.arming === 'schedule') {
      const wins = el('div', { class: 'g-windows', dataset: { field: f + '.arming.schedule' } });
      (g.schedule || []).forEach((w, j) => {
        const row = el('div', { class: 'g-window row', dataset: { field: `${f}.arming.schedule[${j}]` } });
        for (const d of DAYS) row.append(el('label', { class: 'inline day' }, el('input', { type: 'checkbox', class: 'w-day', value: d, checked: (w.days || []).includes(d) }), t('day.' + d)));
        row.append(labelled('gate.from', el('input', { type: 'time', class: 'w-from', value: w.from }), 'inline'));
        row.append(labelled('gate.to', el('input', { type: 'time', class: 'w-to', value: w.to }), 'inline'));
        row.append(button('remove', 'w-remove', () => { collect(); model.gates[i].schedule.splice(j, 1); renderGatesForm(); }));
        wins.append(row);
      });
      wins.append(button('gate.windowAdd', 'w-add', () => { collect(); model.gates[i].schedule.push(newWindow()); renderGatesForm(); }));
      fs.append(wins);
    }
    fs.append(button('gate.remove', 'g-remove', () => { collect(); model.gates.splice(i, 1); renderGatesForm(); }));
    gl.append(fs);
  });
}

function renderInputs() {
  const cl = $('ctrl-forms');
  cl.textContent = '';
  model.webhook.forEach((c, i) => {
    const f = `gate_inputs.webhook.controllers[${i}]`;
    const row = el('div', { class: 'ctrl-form', dataset: { index: String(i), controller: c.id || '', field: f } });
    const gates = el('span', { class: 'c-gates row', dataset: { field: f + '.gates' } }, el('span', { text: t('in.reports') }));
    for (const id of gateIDs()) gates.append(el('label', { class: 'inline' }, el('input', { type: 'checkbox', value: id, checked: (c.gates || []).includes(id) }), ' ', id));
    if (!gateIDs().length) gates.append(el('span', { class: 'hint', text: t('in.noGates') }));
    row.append(el('div', { class: 'row' }, labelled('in.ctrlId', el('input', { class: 'c-id', value: c.id, placeholder: 'ctrl-north', autocomplete: 'off', dataset: { field: f + '.id' } }), 'inline'), gates));
    const known = (gform.webhook || []).some((k) => k.id === c.id && k.has_secret);
    row.append(el('div', { class: 'row' },
      known ? el('label', { class: 'inline' }, el('input', { type: 'checkbox', class: 'c-rotate', checked: c.new_secret }), ' ', t('in.rotate'))
        : el('span', { class: 'hint', text: t('in.secretOnSave') }),
      known && c.secret_file ? el('span', { class: 'hint', text: t('in.secretKept', { file: c.secret_file }) }) : null,
      button('remove', 'c-remove', () => { collect(); model.webhook.splice(i, 1); renderInputs(); })));
    cl.append(row);
  });

  $('mqtt-on').checked = !!model.mqtt;
  $('mqtt-form').hidden = !model.mqtt;
  const m = model.mqtt || { broker: '', username: '', base_topic: 'zigbee2mqtt', devices: [] };
  $('mqtt-broker').value = m.broker || '';
  $('mqtt-user').value = m.username || '';
  $('mqtt-password').value = m.password || '';
  $('mqtt-password').placeholder = m.has_password ? t('in.passwordKept') : '';
  $('mqtt-base').value = m.base_topic || 'zigbee2mqtt';
  const md = $('mqtt-devices');
  md.textContent = '';
  (m.devices || []).forEach((d, i) => {
    const f = `gate_inputs.mqtt.devices[${i}]`;
    md.append(el('div', { class: 'mqtt-device row' },
      labelled('in.friendly', el('input', { class: 'm-name', value: d.name, placeholder: 'north-gate-contact', dataset: { field: f + '.name' } }), 'inline'),
      labelled('in.gate', Object.assign(gateSelect(d.gate, f + '.gate'), { className: 'm-gate' }), 'inline'),
      button('remove', 'm-remove', () => { collect(); model.mqtt.devices.splice(i, 1); renderInputs(); })));
  });

  $('gpio-on').checked = !!model.gpio;
  $('gpio-form').hidden = !model.gpio;
  const g = model.gpio || { chip: 'gpiochip0', lines: [] };
  $('gpio-chip').value = g.chip || 'gpiochip0';
  const gl2 = $('gpio-lines');
  gl2.textContent = '';
  (g.lines || []).forEach((l, i) => {
    const f = `gate_inputs.gpio.lines[${i}]`;
    const role = el('select', { class: 'l-role', dataset: { field: f + '.role' } }, ...ROLES.map((r) => el('option', { value: r, text: t('role.' + r) })));
    role.value = l.role || 'door';
    const bias = el('select', { class: 'l-bias', dataset: { field: f + '.bias' } }, ...BIASES.map((b) => el('option', { value: b, text: t('bias.' + (b || 'none')) })));
    bias.value = l.bias || '';
    gl2.append(el('div', { class: 'gpio-line row', dataset: { field: f } },
      labelled('in.line', el('input', { type: 'number', min: '0', class: 'l-offset', value: String(l.offset ?? 0), dataset: { field: f + '.offset' } }), 'inline'),
      labelled('in.gate', Object.assign(gateSelect(l.gate, f + '.gate'), { className: 'l-gate' }), 'inline'),
      labelled('in.input', el('input', { class: 'l-input', value: l.input, placeholder: 'door-contact', dataset: { field: f + '.input' } }), 'inline'),
      labelled('in.role', role, 'inline'),
      el('label', { class: 'inline' }, el('input', { type: 'checkbox', class: 'l-low', checked: l.active_low }), ' ', t('in.activeLow')),
      labelled('in.bias', bias, 'inline'),
      button('remove', 'l-remove', () => { collect(); model.gpio.lines.splice(i, 1); renderInputs(); })));
  });
}

function newWindow() { return { days: [...DAYS], from: '22:00', to: '06:00' }; }

// collect reads the form back into model.
function collect() {
  const checked = (root, sel) => [...root.querySelectorAll(sel)].filter((c) => c.checked).map((c) => c.value);
  model.gates = [...document.querySelectorAll('#gate-forms .gate-form')].map((fs, i) => {
    const old = model.gates[i] || {};
    const g = {
      id: fs.querySelector('.g-id').value.trim(), name: fs.querySelector('.g-name').value.trim(),
      cameras: checked(fs, '.g-cams input'), arming: fs.querySelector('.g-arming').value,
      time_zone: fs.querySelector('.g-tz').value.trim(), schedule: old.schedule || [],
    };
    if (fs.querySelector('.g-windows')) {
      g.schedule = [...fs.querySelectorAll('.g-window')].map((row) => ({
        days: checked(row, '.w-day'), from: row.querySelector('.w-from').value, to: row.querySelector('.w-to').value,
      }));
    }
    return g;
  });
  model.webhook = [...document.querySelectorAll('#ctrl-forms .ctrl-form')].map((row, i) => {
    const old = model.webhook[i] || {};
    const rot = row.querySelector('.c-rotate');
    return { id: row.querySelector('.c-id').value.trim(), gates: checked(row, '.c-gates input'), new_secret: !!(rot && rot.checked), has_secret: old.has_secret, secret_file: old.secret_file };
  });
  if ($('mqtt-on').checked) {
    model.mqtt = {
      broker: $('mqtt-broker').value.trim(), username: $('mqtt-user').value.trim(), password: $('mqtt-password').value,
      has_password: !!(model.mqtt && model.mqtt.has_password), base_topic: $('mqtt-base').value.trim(),
      devices: [...document.querySelectorAll('#mqtt-devices .mqtt-device')].map((row) => ({ name: row.querySelector('.m-name').value.trim(), gate: row.querySelector('.m-gate').value })),
    };
  } else model.mqtt = null;
  if ($('gpio-on').checked) {
    model.gpio = {
      chip: $('gpio-chip').value.trim(),
      lines: [...document.querySelectorAll('#gpio-lines .gpio-line')].map((row) => ({
        offset: Number(row.querySelector('.l-offset').value), gate: row.querySelector('.l-gate').value, input: row.querySelector('.l-input').value.trim(),
        role: row.querySelector('.l-role').value, active_low: row.querySelector('.l-low').checked, bias: row.querySelector('.l-bias').value,
      })),
    };
  } else model.gpio = null;
  return model;
}

$('gate-add').addEventListener('click', () => {
  collect();
  model.gates.push({ id: '', name: '', cameras: [], arming: 'schedule', schedule: [newWindow()], time_zone: 'Asia/Shanghai' });
  renderGatesForm();
  const last = [...document.querySelectorAll('#gate-forms .g-id')].pop();
  if (last) last.focus();
});
$('ctrl-add').addEventListener('click', () => {
  collect();
  model.webhook.push({ id: '', gates: gateIDs().length === 1 ? gateIDs() : [] });
  renderInputs();
});
$('mqtt-on').addEventListener('change', () => {
  collect();
  if (model.mqtt && !model.mqtt.devices.length && !model.mqtt.broker) model.mqtt.devices.push({ name: '', gate: gateIDs()[0] || '' });
  renderGatesForm();
});
$('mqtt-add').addEventListener('click', () => { collect(); model.mqtt.devices.push({ name: '', gate: gateIDs()[0] || '' }); renderInputs(); });
$('gpio-on').addEventListener('change', () => {
  collect();
  if (model.gpio && !model.gpio.lines.length) model.gpio.lines.push({ offset: 17, gate: gateIDs()[0] || '', input: 'door-contact', role: 'door', active_low: true, bias: 'pull-up' });
  renderGatesForm();
});
$('gpio-add').addEventListener('click', () => { collect(); model.gpio.lines.push({ offset: 0, gate: gateIDs()[0] || '', input: '', role: 'door', active_low: false, bias: '' }); renderInputs(); });
$('gates-reset').addEventListener('click', () => { model = clone(gform); renderGatesForm(); clearProblems(); show($('gates-result'), '', 'result'); });

function clearProblems() {
  $('gates-problems').textContent = '';
  for (const e of document.querySelectorAll('#gates-step .invalid')) { e.classList.remove('invalid'); e.removeAttribute('title'); }
}

// markField outlines the form element of a refused field (the most
// precise one whose data-field the problem's field starts with).
function markField(field, msg) {
  let best = null;
  for (const e of document.querySelectorAll('#gates-step [data-field]')) {
    const f = e.dataset.field;
    if ((field === f || field.startsWith(f + '.') || field.startsWith(f + '[')) && (!best || f.length > best.dataset.field.length)) best = e;
  }
  if (best) { best.classList.add('invalid'); best.title = msg; }
  return best;
}

$('gates-save').addEventListener('click', async () => {
  clearProblems();
  const out = $('gates-result');
  show(out, t('gate.saving'), 'result');
  const body = clone(collect());
  for (const c of body.webhook) { delete c.has_secret; delete c.secret_file; }
  if (body.mqtt) delete body.mqtt.has_password;
  const r = await api('gates/save', body);
  if (r.error) {
    show(out, t('gate.refused'), 'result bad');
    const probs = r.problems && r.problems.length ? r.problems : [{ field: '', msg: r.error }];
    for (const p of probs) {
      $('gates-problems').append(el('li', { text: p.field ? `${p.field}: ${p.msg}` : p.msg, dataset: { field: p.field } }));
      if (p.field) markField(p.field, p.msg);
    }
    const first = document.querySelector('#gates-step .invalid');
    if (first) first.scrollIntoView({ block: 'center' });
    return;
  }
  show(out, t('gate.saved', { rev: r.revision, applied: t('applied.' + r.applied) }), 'result ok');
  out.dataset.revision = r.revision;
  out.dataset.applied = r.applied;
  for (const sec of r.secrets || []) {
    $('gates-secrets').append(el('div', { class: 'secret', dataset: { controller: sec.controller } },
      el('p', { text: t('in.secretOnce', { ctrl: sec.controller }) }),
      el('code', { class: 'secret-value', text: sec.secret }),
      el('p', { class: 'hint', text: t('in.secretFile', { file: sec.file }) })));
  }
  if (r.applied === 'restarting') await waitForRestart(r.revision);
  else { await refreshStatus(); await loadGatesForm(); loadGates(); }
});

// waitForRestart shows that the box restarts on the new revision and
// reconnects the page once it runs it.
async function waitForRestart(rev) {
  const banner = $('restart-banner');
  banner.hidden = false;
  banner.dataset.state = 'restarting';
  banner.textContent = t('restart.going', { rev });
  if (events) { events.close(); events = null; }
  const started = Date.now();
  for (;;) {
    await new Promise((res) => setTimeout(res, 1000));
    let s = null;
    try { s = await api('status'); } catch { /* the box is down */ }
    if (s && !s.error && s.config_revision === rev) break;
    const secs = Math.round((Date.now() - started) / 1000);
    banner.textContent = t(secs > 90 ? 'restart.slow' : 'restart.going', { rev }) + ` (${secs} s)`;
    if (s && s.httpStatus === 401) {
      banner.textContent = t('restart.login');
      banner.dataset.state = 'login';
      $('login').hidden = false;
      $('steps').hidden = true;
      return;
    }
  }
  banner.dataset.state = 'back';
  banner.textContent = t('restart.back', { rev });
  await refreshStatus();
  await loadGatesForm();
  await loadSensors();
  await loadGB();
  loadGates();
  watchGates();
  setTimeout(() => { if (banner.dataset.state === 'back') banner.hidden = true; }, 10000);
}

// ---- sensors step (sensors.js) ----
initSensors({ api, show, waitForRestart });

// ---- police platform step (gb28181.js) ----
initGB({ api, show, waitForRestart });
