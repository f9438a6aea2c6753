// Evidence in a real browser against `vigil demo`: a police liaison
// searches the last seconds of the north-gate camera on the Evidence page
// (timeline with recorded video), requests a bundle with a case number,
// waits until it is ready, downloads it, and `vigil evidence verify`
// passes with central's public key (GET /api/v1/evidence/key). A guard
// sees no Evidence page and gets 403 from the request API. A supervisor
// finds the liaison's export and download on the Audit page; an admin's
// Verify says the chain is intact.
import { writeFileSync, mkdtempSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, newPage, login, apiFetch, check, screenshot, account, BIN } from './lib.mjs';

const CAMERA = 'demo-north-gate/north-gate';
const BEIJING_MS = 8 * 3600 * 1000;
const toInput = (ms) => new Date(ms + BEIJING_MS).toISOString().slice(0, 19);

await run(async (browser) => {
  const tmp = mkdtempSync(join(tmpdir(), 'vigil-evidence-'));

  // The liaison searches the last 40 seconds of one camera.
  const page = await newPage(browser);
  const liaison = await login(page, 'police_liaison');
  await page.getByTestId('nav-evidence').click();
  await page.getByTestId('ev-search').waitFor();
  await page.waitForFunction((cam) => [...document.querySelectorAll('[data-testid="ev-camera"] option')].some((o) => o.value === cam), CAMERA, { timeout: 20000 });
  await page.getByTestId('ev-camera').selectOption(CAMERA);
  const now = Date.now();
  await page.getByTestId('ev-from').fill(toInput(now - 45000));
  await page.getByTestId('ev-to').fill(toInput(now - 5000));
  await page.getByTestId('ev-search-submit').click();
  const row = page.locator(`[data-testid="ev-camera-row"][data-camera="${CAMERA}"]`);
  await row.waitFor({ timeout: 20000 });
  await row.getByTestId('ev-rec').first().waitFor({ timeout: 5000 });
  check(await row.getByTestId('ev-rec').count() >= 1, 'the timeline shows recorded video for the window');

  // Request the bundle; follow it until ready.
  const caseNo = `E2E-${now}`;
  await page.getByTestId('ev-case').fill(caseNo);
  await page.getByTestId('ev-reason').fill('Browser test: person at the north gate');
  await page.getByTestId('ev-request-submit').click();
  const req = page.locator('[data-testid="ev-request-row"]', { hasText: caseNo });
  await req.waitFor({ timeout: 10000 });
  const seen = new Set();
  const t0 = Date.now();
  while (Date.now() - t0 < 120000) {
    const st = await req.getAttribute('data-status');
    seen.add(await req.getByTestId('ev-request-status').textContent());
    if (st === 'ready' || st === 'failed') break;
    await page.waitForTimeout(250);
  }
  console.log(`statuses shown: ${[...seen].join(' → ')}`);
  check(await req.getAttribute('data-status') === 'ready', `the request is ready after ${Math.round((Date.now() - t0) / 1000)} s`);
  await page.setViewportSize({ width: 1280, height: 1000 }); // the timeline, the form and the requests
  await screenshot(page, 'evidence');

  // Download the bundle through its link and verify it offline with central's public key.
  const [download] = await Promise.all([page.waitForEvent('download'), req.getByTestId('ev-bundle-link').click()]);
  const zip = join(tmp, 'bundle.zip');
  await download.saveAs(zip);
  check(statSync(zip).size > 1000, `bundle downloaded (${statSync(zip).size} bytes)`);
  const key = await apiFetch(page, '/api/v1/evidence/key');
  check(key.status === 200 && key.data.pem.includes('PUBLIC KEY'), 'central publishes its evidence public key');
  const keyFile = join(tmp, 'evidence.pub');
  writeFileSync(keyFile, key.data.pem);
  const out = execFileSync(BIN, ['evidence', 'verify', zip, '--key', keyFile], { encoding: 'utf8' });
  console.log(out.trim());
  check(out.includes(caseNo), 'vigil evidence verify passes and names the case');

  // A guard: no Evidence page, and the request API answers 403.
  const gpage = await newPage(browser);
  await login(gpage, 'guard');
  check(await gpage.getByTestId('nav-evidence').isHidden(), 'a guard has no Evidence page');
  const denied = await apiFetch(gpage, '/api/v1/evidence/requests', { method: 'POST', body: {
    case_number: 'x', reason: 'x', cameras: [{ edge: 'demo-north-gate', camera: 'north-gate' }],
    from: new Date(now - 30000).toISOString(), to: new Date(now - 10000).toISOString() } });
  check(denied.status === 403, `a guard's evidence request is refused (${denied.status})`);

  // A supervisor finds the liaison's export and download on the Audit page.
  const spage = await newPage(browser);
  await login(spage, 'supervisor');
  await spage.getByTestId('nav-audit').click();
  await spage.getByTestId('au-filter').waitFor();
  await spage.getByTestId('au-user').fill(liaison);
  await spage.getByTestId('au-apply').click();
  const exportRow = spage.locator(`[data-testid="au-row"][data-action="export"][data-user="${liaison}"]`);
  await exportRow.first().waitFor({ timeout: 10000 });
  check(await exportRow.count() >= 1, `the supervisor sees ${liaison}'s export in the audit log`);
  check(await spage.locator(`[data-testid="au-row"][data-action="download"][data-user="${liaison}"]`).count() >= 1, 'and the download');
  check(await spage.getByTestId('au-verify').isHidden(), 'only admins verify the chain');
  await screenshot(spage, 'audit');

  // An admin verifies the chain.
  const apage = await newPage(browser);
  await login(apage, 'admin');
  await apage.getByTestId('nav-audit').click();
  await apage.getByTestId('au-verify').click();
  const res = apage.getByTestId('au-verify-result');
  await res.waitFor();
  check(await res.getAttribute('data-ok') === 'true', `verify: ${await res.textContent()}`);
  check(account('supervisor').user !== liaison, 'different people');
});
