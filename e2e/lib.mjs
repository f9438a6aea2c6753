// Shared helpers for the console's end-to-end scripts (run by e2e_test.go).
import { chromium } from 'playwright-core';
import { readFileSync, statSync, renameSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';

export const URL = process.env.VIGIL_URL;
export const DATA = process.env.VIGIL_DATA;
export const BIN = process.env.VIGIL_BIN;
export const SHOTS = process.env.VIGIL_SCREENSHOTS;

if (!URL || !DATA) {
  console.error('run through go test ./e2e/ (needs VIGIL_URL, VIGIL_DATA, VIGIL_BIN, VIGIL_SCREENSHOTS)');
  process.exit(2);
}

// Debian's Chromium, headless, with no calls home (this machine's network is closed).
export async function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required'],
  });
}

export function readJSON(name) {
  return JSON.parse(readFileSync(join(DATA, name), 'utf8'));
}

// account returns the demo's user and password for a role.
export function account(role) {
  const u = readJSON('credentials.json').users?.[role];
  if (!u) throw new Error(`credentials.json has no ${role} user`);
  return u;
}

export function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
  console.log(`ok - ${msg}`);
}

// newPage opens a console in a fresh context (its own cookies) in English.
export async function newPage(browser, { locale = 'en-US' } = {}) {
  const ctx = await browser.newContext({ locale, viewport: { width: 1280, height: 800 }, timezoneId: 'Asia/Shanghai' });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
  return page;
}

export async function login(page, role) {
  const { user, password } = account(role);
  await page.goto(`${URL}/`);
  await page.getByTestId('login-user').fill(user);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('login-view').waitFor({ state: 'hidden' });
  return user;
}

// apiFetch calls the API from the page, with its session cookie and the
// header central requires of state-changing requests.
export async function apiFetch(page, path, { method = 'GET', body } = {}) {
  return page.evaluate(async ({ path, method, body }) => {
    const r = await fetch(path, {
      method,
      headers: { 'X-Vigil-Request': '1', 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await r.json(); } catch { /* empty */ }
    return { status: r.status, data };
  }, { path, method, body });
}

const MAX_PNG = 280 * 1024; // docs/screenshots/ stays small

// screenshot saves the page as SHOTS/name.png; a picture-heavy one is
// reduced to a 256-colour palette (ffmpeg) to stay under MAX_PNG.
export async function screenshot(page, name) {
  if (!SHOTS) return;
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path });
  if (statSync(path).size > MAX_PNG) {
    const tmp = join(SHOTS, `.${name}.tmp.png`);
    execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-i', path, '-vf',
      'split[a][b];[a]palettegen=max_colors=256[p];[b][p]paletteuse=dither=bayer', tmp]);
    renameSync(tmp, path);
  }
  console.log(`screenshot ${name}.png (${Math.round(statSync(path).size / 1024)} KiB)`);
}

// run wraps a script: a thrown error fails it with a message.
export async function run(main) {
  const browser = await launch();
  try {
    await main(browser);
    await browser.close();
  } catch (e) {
    console.error(e.stack || String(e));
    await browser.close().catch(() => {});
    process.exit(1);
  }
}

// simGate drives the demo's gate with `vigil sim gate` (forced, sos, held,
// passage) and resolves with its output.
export function simGate(scenario) {
  const d = readJSON('demo.json');
  return new Promise((resolve, reject) => {
    const p = spawn(BIN, ['sim', 'gate', '--webhook', d.webhook_url, '--secret', d.secret,
      '--controller', d.controller, '--gate', d.gate_id, '--scenario', scenario], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b) => { out += b; });
    p.stderr.on('data', (b) => { out += b; });
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`vigil sim gate ${scenario} exited ${code}: ${out}`))));
  });
}

// waitFor polls f (async) until it returns a truthy value or ms pass.
export async function waitFor(f, ms, step = 250) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) return null;
    await new Promise((r) => setTimeout(r, step));
  }
}

// beeps is how often the console's alarm has sounded on this page.
export async function beeps(page) {
  return page.evaluate(() => Number(document.body.dataset.alarmBeeps || 0));
}
