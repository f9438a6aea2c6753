// Alarms a guard cannot miss (#18), on the demo's data and the current
// backend: an SOS lands on top of the queue even when the guard has
// scrolled down a long one (and the queue says how many more cards there
// are instead of dropping them); a red alert raises a pop-up with its
// picture and a live tile on the live wall page and a sound that repeats
// until it is acknowledged or muted; "Muted by … until HH:MM"; after a
// reload without a click the console asks to enable the sound and never
// says "Sound on"; motion boxes are drawn over the detail's picture and
// marked on the clip's timeline; an installer gets the fleet, no queue.
import { URL, run, login, newPage, check, apiFetch, screenshot, simGate, waitFor, beeps, account } from './lib.mjs';
import { chromium } from 'playwright-core';

async function ackAllRed(page) {
  const open = (await apiFetch(page, '/api/v1/alerts?state=raised&limit=1000')).data?.alerts ?? [];
  for (const a of open) {
    if (a.severity === 'red') await apiFetch(page, `/api/v1/alerts/${encodeURIComponent(a.id)}/acknowledge`, { method: 'POST', body: {} });
  }
}

await run(async (browser) => {
  // ---------- SOS on top of a long queue ----------
  const page = await newPage(browser);
  await page.setViewportSize({ width: 1280, height: 600 });
  await page.goto(`${URL}/`);
  await page.evaluate(() => localStorage.setItem('vigil.queue.page', '1')); // a short page: the "more" control shows
  await login(page, 'guard');
  await page.locator('[data-testid=conn-status][data-state=live]').waitFor({ timeout: 10000 });
  // Wait for a queue longer than a page (the demo's cameras keep raising motion).
  await waitFor(async () => Number(await page.getByTestId('alert-list').getAttribute('data-total')) >= 2, 90000);
  const q = await page.evaluate(() => ({
    total: Number(document.querySelector('[data-testid=alert-list]').dataset.total),
    shown: document.querySelectorAll('[data-testid=alert-card]').length,
    more: document.querySelector('[data-testid=queue-more]').textContent.replace(/\s+/g, ' ').trim(),
  }));
  const shown = q.shown;
  check(q.shown === 1 && q.total > q.shown, `a page of ${q.shown} cards out of ${q.total}`);
  check(q.more.includes(String(q.total - q.shown)), `the queue says "${q.more}" instead of dropping cards`);
  await page.getByTestId('queue-more-btn').click();
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=alert-card]').length > n, shown);
  check(true, 'Show brings the rest');
  await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  await simGate('sos');
  // A new SOS, or (pressed again within the gate's fold window) the open
  // one counting up: either way it must come first.
  const sos = await waitFor(async () => {
    const c = page.locator('[data-testid=alert-card]').first();
    return (await c.getAttribute('data-kind')) === 'gate.sos' ? c.getAttribute('data-alert-id') : null;
  }, 10000, 50);
  check(sos !== null, `the SOS is the first card (${sos})`);
  const box = await page.locator(`[data-testid=alert-card][data-alert-id="${sos}"]`).boundingBox();
  check(box && box.y >= 0 && box.y < 600, `the SOS card is on screen (y=${box && Math.round(box.y)})`);
  check(await page.locator(`[data-testid=alert-card][data-alert-id="${sos}"]`).evaluate((e) => e.classList.contains('flash')), 'the SOS card flashes');
  check(!(await page.locator(`[data-testid=alert-card][data-alert-id="${sos}"] [data-testid=alert-summary]`).textContent()).includes('undefined'), 'the summary is built from its fields');
  await screenshot(page, 'queue-sos');

  // ---------- pop-up and a repeating sound on the live wall ----------
  await page.getByTestId('nav-live').click();
  await page.getByTestId('live-view').waitFor();
  await simGate('forced');
  const pop = page.getByTestId('alarm-popup');
  await pop.waitFor({ state: 'visible', timeout: 10000 });
  check(await page.getByTestId('live-view').isVisible(), 'the pop-up shows over the live wall page');
  const popId = await pop.getAttribute('data-alert-id');
  const popAlert = (await apiFetch(page, `/api/v1/alerts/${encodeURIComponent(popId)}`)).data;
  check(popAlert.severity === 'red' && popAlert.state === 'raised', `the pop-up is for a waiting red alert (${popAlert.kind})`);
  check(await page.getByTestId('popup-ack').isVisible() && await page.getByTestId('popup-open').isVisible(), 'it has Acknowledge and Open');
  if (popAlert.snapshot_url) {
    await page.getByTestId('popup-snapshot').waitFor({ timeout: 5000 });
    check(true, 'it shows the picture');
  }
  const tile = await waitFor(() => page.locator('[data-testid=popup-live] [data-testid=popup-live-tile]').count(), 5000);
  check(tile > 0 || (await page.getByTestId('popup-live').textContent()).length > 0, 'it shows a live tile of the linked camera');
  await page.waitForTimeout(1000);
  const b0 = await beeps(page);
  await page.waitForTimeout(6000);
  const b1 = await beeps(page);
  check(b1 - b0 >= 2, `the alarm repeats while unacknowledged (${b1 - b0} times in 6 s)`);
  check(await page.getByTestId('mute').getAttribute('data-state') === 'on', 'the header says the sound is on');
  await screenshot(page, 'alarm-popup');

  // mute for 1 minute: silent, and the header says who muted until when
  await page.getByTestId('mute').click();
  await page.getByTestId('mute-1').click();
  await page.locator('[data-testid=mute][data-state=muted]').waitFor({ timeout: 5000 });
  const label = await page.getByTestId('mute').textContent();
  check(/guard/.test(label) && /\d\d:\d\d/.test(label), `muted: "${label}"`);
  const m0 = await beeps(page);
  await page.waitForTimeout(5500);
  check(await beeps(page) === m0, 'muted: no sound');
  await page.getByTestId('mute').click();
  await page.getByTestId('mute-off').click();
  await page.locator('[data-testid=mute][data-state=on]').waitFor({ timeout: 5000 });
  check(true, 'unmuted');

  // acknowledge from the pop-up: that alert leaves it
  await page.getByTestId('popup-ack').click();
  await waitFor(async () => (await apiFetch(page, `/api/v1/alerts/${encodeURIComponent(popId)}`)).data.state !== 'raised', 5000);
  check((await apiFetch(page, `/api/v1/alerts/${encodeURIComponent(popId)}`)).data.state === 'acknowledged', 'Acknowledge in the pop-up acknowledges the alert');
  // once every red is acknowledged the pop-up goes and the sound stops
  let quiet = false;
  for (let i = 0; i < 4 && !quiet; i++) {
    await ackAllRed(page);
    await waitFor(async () => page.getByTestId('alarm-popup').isHidden(), 4000);
    const q0 = await beeps(page);
    await page.waitForTimeout(3000);
    quiet = (await page.getByTestId('alarm-popup').isHidden()) && (await beeps(page)) === q0;
  }
  check(quiet, 'all red acknowledged: no pop-up, no sound');

  // ---------- boxes over the detail's picture and on the timeline ----------
  const withBoxes = await waitFor(async () => {
    const all = (await apiFetch(page, '/api/v1/alerts?limit=1000')).data?.alerts ?? [];
    return all.find((a) => a.boxes?.length && a.snapshot_url) ?? null;
  }, 60000, 1000);
  check(withBoxes !== null, `an alert with ${withBoxes?.boxes.length} motion boxes`);
  await page.goto(`${URL}/#/alert/${encodeURIComponent(withBoxes.id)}`);
  await page.getByTestId('detail-view').waitFor();
  const svg = page.locator('[data-testid=detail-snapshots] [data-testid=motion-boxes]').first();
  await svg.waitFor({ timeout: 10000 });
  const rects = await svg.locator('rect').count();
  check(rects === withBoxes.boxes.length, `the picture has ${rects} box rectangles (${withBoxes.boxes.length} boxes)`);
  const r0 = await svg.locator('rect').first().evaluate((r) => ({ x: Number(r.getAttribute('x')), w: Number(r.getAttribute('width')) }));
  check(Math.abs(r0.x - withBoxes.boxes[0].x) < 1e-6 && Math.abs(r0.w - withBoxes.boxes[0].w) < 1e-6, 'rectangles in the picture\'s 0..1 coordinates');
  await page.locator('[data-testid=timeline-box]').first().waitFor({ state: 'attached', timeout: 20000 });
  check(true, 'the timeline marks the picture with boxes');
  await screenshot(page, 'detail-boxes');

  // ---------- after a reload, no click yet: ask to enable the sound ----------
  const quietBrowser = await chromium.launch({
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=document-user-activation-required'], // desktop Chrome's default: audio needs a click
  });
  try {
    // Signed in through the API in one context; its cookie opens the
    // console in a fresh context that has never had a click (Chromium lets
    // a page play once anything on the site was clicked, or evaluated from
    // a test, in the same tab).
    const pa = await newPage(quietBrowser);
    await pa.goto(`${URL}/`);
    const { user, password } = account('guard');
    check((await apiFetch(pa, '/api/v1/login', { method: 'POST', body: { user, password } })).status === 200, 'signed in without a click');
    const storageState = await pa.context().storageState();
    const ctx2 = await quietBrowser.newContext({ storageState, locale: 'en-US', viewport: { width: 1280, height: 800 }, timezoneId: 'Asia/Shanghai' });
    const p2 = await ctx2.newPage();
    await p2.goto(`${URL}/#/live`);
    await p2.locator('[data-testid=conn-status][data-state=live]').waitFor({ timeout: 10000 });
    await p2.waitForTimeout(500);
    {
      await p2.getByTestId('sound-banner').waitFor({ state: 'visible', timeout: 5000 });
      check(true, 'a banner asks to enable the alarm sound');
      const st = await p2.getByTestId('mute').getAttribute('data-state');
      const txt = await p2.getByTestId('mute').textContent();
      check(st === 'blocked' && !/Sound on/.test(txt), `the header does not claim "Sound on" (${txt})`);
      await screenshot(p2, 'sound-blocked');
      await p2.getByTestId('sound-enable').click();
      await p2.getByTestId('sound-banner').waitFor({ state: 'hidden', timeout: 5000 });
      check(await p2.getByTestId('mute').getAttribute('data-state') !== 'blocked', 'one click enables the sound');
    }
  } finally {
    await quietBrowser.close();
  }

  // Leave no gate alert open: the next scripts force the gate again and
  // expect a new alert, not this one counting up.
  const gates = (await apiFetch(page, '/api/v1/alerts?state=open&limit=1000')).data?.alerts ?? [];
  for (const g of gates.filter((x) => x.kind.startsWith('gate.'))) {
    await apiFetch(page, `/api/v1/alerts/${encodeURIComponent(g.id)}/resolve`, { method: 'POST', body: { note: 'alarm test over' } });
  }

  // ---------- an installer: the fleet, no queue, no "connecting…" ----------
  const inst = await newPage(browser);
  await login(inst, 'installer');
  await inst.getByTestId('fleet-view').waitFor({ state: 'visible', timeout: 10000 });
  check(true, 'the installer starts on the fleet page');
  check(await inst.getByTestId('nav-queue').isHidden() && await inst.getByTestId('queue-view').isHidden(), 'no alert queue for an installer');
  check(await inst.getByTestId('conn-status').isHidden(), 'no connection status stuck on connecting…');
  check(await inst.getByTestId('empty').isHidden(), 'no "No open alerts"');
  await inst.locator('[data-testid=fleet-edge]').first().waitFor({ timeout: 10000 });
  check(true, 'the fleet lists the edge');
  check(await inst.getByTestId('alarm-popup').isHidden() && await inst.getByTestId('mute').isHidden(), 'no alarm for an installer');
  await inst.getByTestId('nav-sites').click();
  await inst.locator('[data-testid=site-tile]').first().waitFor();
  check(true, 'the installer has the site map');
  for (const n of ['nav-evidence', 'nav-audit', 'nav-report', 'nav-admin']) check(await inst.getByTestId(n).isHidden(), `installer: no ${n}`);
});
