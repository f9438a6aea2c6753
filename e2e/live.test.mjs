// Live view in a real browser: log in as a guard, open the live wall, a
// tile's <video> plays (currentTime advances for 5 s), and the
// glass-to-glass latency is measured against the simulator's clock: the
// simulated camera stamps every frame's send time into its RTCP sender
// reports, the edge carries that wall clock in each fragment's header,
// and the page (window.vigilLive) reports now − wall clock of the frame
// on screen. Same machine, same clock.
//
// Run by the e2e harness against `vigil demo` with VIGIL_URL, VIGIL_DATA
// (the demo's directory: credentials.json) and VIGIL_SCREENSHOTS.
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';

const base = process.env.VIGIL_URL || 'http://127.0.0.1:8080';
const data = process.env.VIGIL_DATA || 'vigil-data';
const shots = process.env.VIGIL_SCREENSHOTS || 'docs/screenshots';
const creds = JSON.parse(readFileSync(join(data, 'credentials.json'), 'utf8'));
const guard = creds.users.guard;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
});
try {
  const page = await browser.newPage({ viewport: { width: 640, height: 400 }, locale: 'en-US' });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(base + '/');
  await page.getByTestId('login-user').fill(guard.user);
  await page.getByTestId('login-password').fill(guard.password);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('nav-live').click();
  await page.waitForFunction(() => location.hash === '#/live');

  // A tile plays: wait for the first picture, then watch currentTime for 5 s.
  const video = page.getByTestId('live-video').first();
  await video.waitFor({ state: 'attached', timeout: 15000 });
  await page.waitForFunction(() => {
    const v = document.querySelector('[data-testid="live-video"]');
    return v && v.readyState >= 2 && v.currentTime > 0;
  }, null, { timeout: 20000 });
  const t0 = await video.evaluate((v) => v.currentTime);
  const lat = [];
  const started = Date.now();
  while (Date.now() - started < 10000) {
    const l = await page.evaluate(() => window.vigilLive && window.vigilLive.latencyMs(0));
    if (typeof l === 'number') lat.push(l);
    await page.waitForTimeout(200);
    if (Date.now() - started >= 5000 && Date.now() - started < 5200) {
      const t5 = await video.evaluate((v) => v.currentTime);
      assert.ok(t5 - t0 >= 4, `live video advanced ${(t5 - t0).toFixed(2)} s in 5 s`);
      console.log(`live: currentTime advanced ${(t5 - t0).toFixed(2)} s in 5 s`);
    }
  }
  const state = await page.getByTestId('live-state').first().evaluate((el) => el.closest('[data-state]').dataset.state);
  assert.equal(state, 'live', `tile state ${state}`);
  assert.ok(lat.length >= 20, `only ${lat.length} latency samples`);
  lat.sort((a, b) => a - b);
  const p50 = lat[Math.floor(lat.length / 2)];
  const p95 = lat[Math.floor(lat.length * 0.95)];
  const max = lat[lat.length - 1];
  console.log(`live latency (glass-to-glass vs the simulator's clock, ${lat.length} samples over 10 s): p50 ${p50.toFixed(0)} ms, p95 ${p95.toFixed(0)} ms, max ${max.toFixed(0)} ms`);
  assert.ok(p50 <= 2000, `p50 latency ${p50} ms over 2 s`);

  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, 'live.png') });
} finally {
  await browser.close();
}
