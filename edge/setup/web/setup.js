// The installer's setup page: plain ES module, no build step.
import { t, setLang, getLang } from './i18n.js';

const $ = (id) => document.getElementById(id);

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

function show(el, text, cls) {
  el.textContent = text;
  if (cls !== undefined) el.className = cls;
}

// ---- login ----
$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const r = await api('login', { code: $('code').value });
  if (r.httpStatus !== 200) {
    show($('login-error'), r.httpStatus === 401 ? t('login.wrong') : r.error);
    return;
  }
  $('login').hidden = true;
  $('steps').hidden = false;
  await refreshStatus();
  loadGates();
  watchGates();
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
    if (getLang() === 'zh-CN' && kindZh[r.kind]) msg = kindZh[r.kind] + '（' + msg + '）';
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
let current = [];   // points of the polygon being drawn (normalised)

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
  poly(current, false, '#ffcc00');
}

canvas.addEventListener('click', (e) => {
  const r = canvas.getBoundingClientRect();
  const x = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
  const y = Math.min(1, Math.max(0, (e.clientY - r.top) / r.height));
  current.push([Math.round(x * 1000) / 1000, Math.round(y * 1000) / 1000]);
  drawZones();
});

$('zone-close').addEventListener('click', () => {
  if (current.length < 3) return;
  const mask = $('zone-kind').value === 'mask';
  zones.push({ name: mask ? '' : ($('zone-name').value || `zone-${zones.length + 1}`), points: current, mask, sensitivity: mask ? 0 : Number($('zone-sens').value) });
  current = [];
  drawZones();
});

$('zone-undo').addEventListener('click', () => {
  if (current.length) current.pop(); else zones.pop();
  drawZones();
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
  return { camera: $('zone-camera').value, zones: zs, masks: ms };
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
  const img = new Image();
  img.alt = 'snapshot';
  img.onload = () => { snapshot = img; drawZones(); };
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
  const el = $('zone-saved');
  show(el, t('zone.saved', { rev: r.revision, applied: r.applied }) + (r.message ? ' ' + r.message : ''), 'result ok');
  el.dataset.revision = r.revision;
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
$('zone-preview').addEventListener('change', () => { if (!previewing) previewLoop(); });

// ---- gates: their state, and each event the moment the box hears it ----
function watchGates() {
  const es = new EventSource('/setup/api/gates/events');
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
    const res = await fetch('/api/v1/gates');
    const g = await res.json();
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

$('lang').value = getLang();
$('lang').addEventListener('change', (e) => setLang(e.target.value));
setLang(getLang());
drawZones();
