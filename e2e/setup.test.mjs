// The installer's setup page on the demo's edge: enter the setup code,
// probe a camera (a wrong password gives the plain-words error, the right
// one a snapshot), draw a zone on the snapshot with the mouse, see the
// gate heard, run the self-test to green. Enrolment: the demo's edge is
// enrolled already (the page says so, and enrolling again needs "again");
// then it enrols again for real with a fresh token from central;
// zones drawn on a running camera with the live motion preview are saved
// as a new config revision; gate events arrive live (SSE). Last, a gate is
// added with a webhook controller, the north-gate camera and a night
// schedule (a wrong time zone is refused first, the field named, nothing
// saved); saved, the box restarts on the new revision, the page reconnects,
// and a passage driven with the controller's new secret arrives live.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN, DATA, run, newPage, check, screenshot, readJSON } from './lib.mjs';

function vigil(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b) => { out += b; });
    p.stderr.on('data', (b) => { out += b; });
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`vigil ${args[0]} exited ${code}: ${out}`))));
  });
}

// A camera with a password: the simulator on its own port, with one of
// the demo's clips.
function passwordCamera(port) {
  const dir = process.env.VIGIL_FOOTAGE || fileURLToPath(new URL('../.cache/footage/', import.meta.url));
  const clip = readdirSync(dir).find((f) => /^(tree|bursts-640).*\.mp4$/.test(f));
  if (!clip) throw new Error(`no clip in ${dir}`);
  const p = spawn(BIN, ['sim', 'camera', '--listen', `127.0.0.1:${port}`, '--user', 'admin', '--password', 's3cret', `door=${join(dir, clip)}`],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  return p;
}

const num = (r) => Number(String(r || 'r0').slice(1));

// edgeRecord is central's view of the demo's edge (admin token).
async function edgeRecord(adminToken) {
  const r = await fetch(`${process.env.VIGIL_URL}/api/v1/edges/demo-north-gate`, { headers: { Authorization: `Bearer ${adminToken}` } });
  return r.json();
}

// refreshRevision waits until the page shows the revision the box runs.
async function refreshRevision(page) {
  await page.waitForFunction(() => document.getElementById('status-line').dataset.revision, null, { timeout: 10000 });
}

await run(async (browser) => {
  const demo = readJSON('demo.json');
  const edge = demo.edge_api;
  const code = readFileSync(join(DATA, 'edge', 'setup-code'), 'utf8').trim();
  const port = 20000 + Math.floor(Math.random() * 20000);
  const cam = passwordCamera(port);
  try {
    await new Promise((r) => setTimeout(r, 1500));
    const page = await newPage(browser);
    await page.setViewportSize({ width: 900, height: 1000 });
    await page.goto(`${edge}/setup/`);
    await page.locator('#code').fill('0000-0000');
    await page.locator('#login-form button').click();
    await page.locator('#login-error').filter({ hasText: 'Wrong setup code' }).waitFor();
    check(true, 'a wrong setup code is refused');
    await page.locator('#code').fill(code);
    await screenshot(page, 'setup-code');
    await page.locator('#login-form button').click();
    await page.locator('#steps').waitFor();
    check(true, 'the setup code opens the page');

    // Step 1: the demo's box is enrolled and connected.
    await page.locator('#enrol-state[data-enrolled="true"]').waitFor({ timeout: 10000 });
    const state = await page.locator('#enrol-state').textContent();
    check(state.includes('Enrolled as demo-north-gate'), `the page says the box is enrolled: "${state}"`);
    await page.locator('#enrol-central').fill('https://127.0.0.1:1');
    await page.locator('#enrol-token').fill('vigil-enrol-1.not-a-token');
    await page.locator('#enrol-entrance').fill('North gate');
    await page.locator('#enrol').click();
    await page.locator('#enrol-result.bad').waitFor({ timeout: 15000 });
    const refused = await page.locator('#enrol-result').textContent();
    check(refused.includes('already enrolled'), `enrolling a connected box again needs "again": "${refused}"`);

    // A real enrolment through the page: an admin's one-time token from
    // central, "enrol again" ticked; the box gets a new key pair and is
    // back on central with it.
    const creds = readJSON('credentials.json');
    const tokResp = await fetch(`${process.env.VIGIL_URL}/api/v1/enrolment-tokens`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${creds.admin_token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ edge_id: 'demo-north-gate', site_id: 'demo/lotus/wall/north-gate', ttl: '10m' }),
    });
    check(tokResp.status === 201, `central made an enrolment token (${tokResp.status})`);
    const tok = await tokResp.json();
    // The edge hub's address, as the demo's edge.yaml names it.
    const hubHost = /url:\s*wss:\/\/([^/\s]+)/.exec(readFileSync(join(DATA, 'edge.yaml'), 'utf8'))?.[1];
    check(!!hubHost, 'the demo\'s edge.yaml names the edge hub');
    const hub = `https://${hubHost}`;
    const before = await edgeRecord(creds.admin_token);
    await page.locator('#enrol-central').fill(hub);
    await page.locator('#enrol-token').fill(tok.token);
    await page.locator('#enrol-entrance').fill('North gate');
    await page.locator('#enrol-again').check();
    await page.locator('#enrol').click();
    await page.locator('#enrol-result.ok').waitFor({ timeout: 15000 });
    // Enrolled anew (a later enrolled_at) and connected since, with the new key.
    const ms = (t) => (t ? Date.parse(t) : 0);
    const fresh = (e) => e.online && ms(e.enrolled_at) > ms(before.enrolled_at) && ms(e.connected_at) >= ms(e.enrolled_at);
    let after = before;
    for (let i = 0; i < 60 && !fresh(after); i++) {
      await new Promise((r) => setTimeout(r, 250));
      after = await edgeRecord(creds.admin_token);
    }
    check(fresh(after), `the box enrolled again from the page and is back on central with its new key (${JSON.stringify({ online: after.online, enrolled_at: after.enrolled_at, connected_at: after.connected_at })})`);
    await page.locator('#status-step').scrollIntoViewIfNeeded();
    await screenshot(page, 'setup-enrol');

    // Probe with a wrong password: plain words.
    const url = `rtsp://127.0.0.1:${port}/door`;
    await page.locator('#probe-url').fill(url);
    await page.locator('#probe-user').fill('admin');
    await page.locator('#probe-password').fill('guess');
    await page.locator('#probe').click();
    await page.locator('#probe-result.bad').waitFor({ timeout: 15000 });
    const msg = await page.locator('#probe-result').textContent();
    check(msg.includes('wrong user name or password'), `wrong password reported in plain words: "${msg}"`);
    await screenshot(page, 'setup-probe-wrong-password');

    // The right password: codec, size and a snapshot.
    await page.locator('#probe-password').fill('s3cret');
    await page.locator('#probe').click();
    await page.locator('#probe-result.ok').waitFor({ timeout: 15000 });
    await page.locator('#probe-snapshot').waitFor();
    const ok = await page.locator('#probe-result p').textContent();
    check(/H26[45] \d+×\d+/.test(ok), `camera probed: "${ok}"`);
    await screenshot(page, 'setup-probe-ok');

    // Draw a zone by mouse on the snapshot.
    const canvas = page.locator('#zone-canvas');
    await canvas.scrollIntoViewIfNeeded();
    const box = await canvas.boundingBox();
    for (const [x, y] of [[0.15, 0.55], [0.85, 0.55], [0.9, 0.95], [0.1, 0.95]]) {
      await page.mouse.click(box.x + x * box.width, box.y + y * box.height);
    }
    await page.locator('#zone-name').fill('gate');
    await page.locator('#zone-close').click();
    await page.locator('#zone-save').click();
    await page.locator('#zone-yaml').filter({ hasText: 'name: "gate"' }).waitFor();
    const yaml = await page.locator('#zone-yaml').textContent();
    check(/points: \[\[0\.1\d\d, 0\.5\d\d\]/.test(yaml), 'the zone drawn by mouse has normalised points');
    await screenshot(page, 'setup-zone');

    // A running camera: its picture, zones drawn over it with the motion
    // preview on, saved as a new config revision.
    const revBefore = await page.locator('#status-line').getAttribute('data-revision');
    await page.locator('#zone-camera').selectOption('north-gate');
    await page.waitForFunction(() => document.getElementById('zone-canvas').width > 0 && document.getElementById('zone-canvas').width !== 640, null, { timeout: 10000 }).catch(() => {});
    const box2 = await canvas.boundingBox();
    for (const [x, y] of [[0.05, 0.3], [0.95, 0.3], [0.95, 0.98], [0.05, 0.98]]) {
      await page.mouse.click(box2.x + x * box2.width, box2.y + y * box2.height);
    }
    await page.locator('#zone-name').fill('path');
    await page.locator('#zone-close').click();
    await page.locator('#zone-preview').check();
    await page.waitForFunction(() => Number(document.getElementById('preview-img').dataset.loads || 0) >= 3, null, { timeout: 15000 });
    const natural = await page.locator('#preview-img').evaluate((img) => [img.naturalWidth, img.naturalHeight]);
    check(natural[0] === 320, `the motion preview loads at analysis size, refreshed: ${natural.join('×')}`);
    await page.locator('#zones-step').scrollIntoViewIfNeeded();
    await screenshot(page, 'setup-preview');
    await page.locator('#zone-apply').click();
    await page.locator('#zone-saved[data-revision]').waitFor({ timeout: 10000 });
    const revAfter = await page.locator('#zone-saved').getAttribute('data-revision');
    check(num(revAfter) > num(revBefore), `saving the zones makes a new revision: ${revBefore} → ${revAfter}`);
    await page.locator('#status-line[data-revision="' + revAfter + '"]').waitFor({ timeout: 10000 });
    check(true, 'the box runs the new revision');
    await page.locator('#zone-preview').uncheck();

    // The installer presses the gate's button: the gate is heard.
    await vigil(['sim', 'gate', '--webhook', demo.webhook_url, '--secret', demo.secret, '--controller', demo.controller,
      '--gate', demo.gate_id, '--scenario', 'passage']);
    await page.locator('#gate-events li').first().waitFor({ timeout: 10000 });
    check(true, 'gate events arrive live on the page (SSE)');
    await page.locator('#gates li.green').waitFor({ timeout: 10000 });
    check(true, 'the gate turns green once heard');
    await page.locator('#gates-step').scrollIntoViewIfNeeded();
    await screenshot(page, 'setup-gate-events');

    // Self-test to green.
    let green = false;
    for (let i = 0; i < 5 && !green; i++) {
      await page.locator('#selftest').click();
      await page.locator('#selftest-summary[data-ok]').waitFor({ timeout: 20000 });
      green = (await page.locator('#selftest-summary').getAttribute('data-ok')) === 'true';
      if (!green) {
        console.log('self-test red:', await page.locator('#selftest-checks').textContent());
        await page.evaluate(() => document.getElementById('selftest-summary').removeAttribute('data-ok'));
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    check(green, 'the self-test is green');
    await page.locator('#selftest-step').scrollIntoViewIfNeeded();
    await screenshot(page, 'setup-selftest');

    // Step 4, configured: a new gate, its camera, its arming schedule and
    // a webhook controller, saved as a config revision.
    await refreshRevision(page);
    const revGates = await page.locator('#status-line').getAttribute('data-revision');
    await page.locator('#gate-forms .gate-form').first().waitFor({ timeout: 10000 });
    check((await page.locator('#gate-forms .g-id').first().inputValue()) === demo.gate_id, 'the demo\'s gate is in the form');
    await page.locator('#gate-add').click();
    const form = page.locator('#gate-forms .gate-form').last();
    await form.locator('.g-id').fill('east-wicket');
    await form.locator('.g-name').fill('East wicket');
    await form.locator('.g-cams input[value="north-gate"]').check();
    check((await form.locator('.g-arming').inputValue()) === 'schedule', 'a new gate is armed by schedule');
    await form.locator('.w-day[value="sun"]').uncheck();
    await form.locator('.w-from').fill('21:30');
    await form.locator('.w-to').fill('06:00');
    await form.locator('.g-tz').fill('Mars/Olympus');
    await page.locator('#ctrl-add').click();
    const ctrl = page.locator('#ctrl-forms .ctrl-form').last();
    await ctrl.locator('.c-id').fill('wicket-ctrl');
    await ctrl.locator('.c-gates input[value="east-wicket"]').check();
    await page.locator('#gates-save').click();
    await page.locator('#gates-problems li[data-field="gates[1].arming.time_zone"]').waitFor({ timeout: 10000 });
    check(await form.locator('.g-tz.invalid').count() === 1, 'a wrong time zone is refused with its field named and marked');
    check((await page.locator('#gates-secrets .secret').count()) === 0, 'a refused form makes no secret');
    await form.locator('.g-tz').fill('Asia/Shanghai');
    await page.locator('#gates-save').click();
    const secretEl = page.locator('#gates-secrets .secret[data-controller="wicket-ctrl"] code');
    await secretEl.waitFor({ timeout: 10000 });
    const secret = (await secretEl.textContent()).trim();
    check(/^[0-9a-f]{64}$/.test(secret), 'the new controller\'s secret is shown once');
    const revNew = await page.locator('#gates-result').getAttribute('data-revision');
    check(num(revNew) > num(revGates), `saving the gates makes a new revision: ${revGates} → ${revNew}`);
    check((await page.locator('#gates-result').getAttribute('data-applied')) === 'restarting', 'a new gate restarts the box');
    await page.locator('#restart-banner[data-state="restarting"]').waitFor({ timeout: 5000 });
    check(true, 'the page says the box is restarting');
    await page.locator('#restart-banner[data-state="back"]').waitFor({ timeout: 90000 });
    await page.locator('#status-line[data-revision="' + revNew + '"]').waitFor({ timeout: 10000 });
    check(true, `the box is back on ${revNew} and the page reconnected`);
    await page.locator('#gate-forms .gate-form[data-gate="east-wicket"]').waitFor({ timeout: 10000 });
    const cams = await page.locator('#gate-forms .gate-form[data-gate="east-wicket"] .g-cams input:checked').evaluateAll((es) => es.map((e) => e.value));
    check(cams.join() === 'north-gate', `the gate runs with its camera: ${cams}`);
    const days = await page.locator('#gate-forms .gate-form[data-gate="east-wicket"] .w-day:checked').evaluateAll((es) => es.map((e) => e.value));
    check(days.join() === 'mon,tue,wed,thu,fri,sat', `and its schedule: ${days}`);

    // Drive a passage through the new controller: it arrives live.
    await new Promise((r) => setTimeout(r, 1000));
    await vigil(['sim', 'gate', '--webhook', demo.webhook_url, '--secret', secret, '--controller', 'wicket-ctrl',
      '--gate', 'east-wicket', '--scenario', 'passage']);
    await page.locator('#gate-events li[data-gate="east-wicket"]').first().waitFor({ timeout: 10000 });
    check(true, 'a passage on the new gate arrives live after the restart');
    await page.locator('#gates li.green', { hasText: 'East wicket' }).waitFor({ timeout: 10000 });
    check(true, 'the new gate turns green once heard');
    await page.setViewportSize({ width: 900, height: 2000 });
    await page.evaluate(() => document.getElementById('gates-step').scrollIntoView());
    await screenshot(page, 'setup-gates');
  } finally {
    cam.kill();
  }
});
