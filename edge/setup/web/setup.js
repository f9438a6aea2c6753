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
  refreshStatus();
  pollGates();
});

async function refreshStatus() {
  const s = await api('status');
  if (s.error) return;
  show($('status-line'), t('status.line', { edge: s.edge_id, central: t(s.central_connected ? 'status.connected' : 'status.disconnected') }));
  if (s.config_revision) $('status-line').textContent += ' (config ' + s.config_revision + ')';
}

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

let snapshot = null; // Image of the last good probe

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
const zones = [];   // {name, points: [[x,y]...]} closed
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
  for (const z of zones) poly(z.points, true, '#20c060');
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
  zones.push({ name: $('zone-name').value || `zone-${zones.length + 1}`, points: current });
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
  if (!zones.length) { show($('zone-error'), t('zone.none')); return; }
  const r = await api('zones', { camera: '', zones });
  if (r.error) { show($('zone-error'), r.error); return; }
  $('zone-yaml').textContent = t('zone.ok') + '\n\n' + r.yaml;
});

// ---- gates: poll the box's gate state ----
async function pollGates() {
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
  } catch (e) { /* the box restarts; try again */ }
  setTimeout(pollGates, 1000);
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

$('lang').value = getLang();
$('lang').addEventListener('change', (e) => setLang(e.target.value));
setLang(getLang());
drawZones();
