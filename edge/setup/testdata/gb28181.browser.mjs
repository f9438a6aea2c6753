// The setup page's police platform step in Chromium (run by the edge's
// setup_gb28181_test.go against a running edge: SETUP_URL, SETUP_CODE,
// SETUP_SHOTS). The installer turns the platform on and fills its fields;
// an alarm input's type code typed for the camera is flagged beside it;
// "fill from a base ID" gives the camera its ID; saved without a
// password, the page is refused with the password marked; with one, it
// is saved (the Go test checks the revision). With GB_STATE_ONLY (run by
// edge/setup's TestGB28181StateInBrowser against its fake backend) it
// checks the registration line and the rows instead.
import { chromium } from 'playwright-core';
import { join } from 'node:path';

const URL = process.env.SETUP_URL;
const CODE = process.env.SETUP_CODE;
const SHOTS = process.env.SETUP_SHOTS || '.';
if (!URL || !CODE) {
  console.error('run through go test ./edge/ -run TestGB28181SetupStepInBrowser');
  process.exit(2);
}

function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
  console.log(`ok - ${msg}`);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await (await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 1400 } })).newPage();
const errors = [];
page.on('pageerror', (e) => { errors.push(e.message); console.log(`page error: ${e.message}`); });
try {
  await page.goto(`${URL}/setup/`);
  await page.locator('#code').fill(CODE);
  await page.locator('#login-form button[type=submit]').click();
  await page.locator('#steps').waitFor();

  if (process.env.GB_STATE_ONLY) {
    // The registration as the box reports it (edge/setup's fake backend:
    // refused by the platform, its clock 1.5 s behind).
    const live = page.locator('#gb-live[data-state="offline"]');
    await live.waitFor({ timeout: 10000 });
    const text = await live.textContent();
    check(text.includes('not registered') && text.includes('403 Forbidden') && text.includes('1.5 s behind'), `the registration is shown: ${text}`);
    check(await page.locator('#gb-on').isChecked() && await page.locator('#gb-password').getAttribute('placeholder') === 'set (leave empty to keep it)',
      'the platform is on, its password only said to be set');
    const rows = await page.locator('#gb-channels .gb-row').evaluateAll((trs) => trs.map((tr) => `${tr.dataset.kind}/${tr.dataset.device}=${tr.querySelector('.gb-id').value}`));
    check(rows.join(' ') === 'camera/north=34020000001320000001 camera/south= gate/north-gate=34020000001340000001 sensor/gas-1=34020000001340000002',
      `every device has its row and ID: ${rows}`);
    await screenshot('gb28181-state');
    check(!errors.length, `no page errors: ${errors.join('; ')}`);
  } else {
    await saveFlow();
  }
} catch (e) {
  await screenshot('gb28181-failed').catch(() => {});
  throw e;
} finally {
  await browser.close();
}

async function saveFlow() {
  // Off on a box without a platform; every device has a row.
  const row = page.locator('#gb-channels .gb-row[data-kind="camera"][data-device="gate-cam"]');
  await row.waitFor({ state: 'attached' });
  check(!(await page.locator('#gb-on').isChecked()) && await page.locator('#gb-form').isHidden(), 'the platform is off');
  await page.locator('#gb-live[data-state="off"]').waitFor({ timeout: 10000 });
  check(true, `the page says no platform runs: ${await page.locator('#gb-live').textContent()}`);

  await page.locator('#gb-on').check();
  check(await page.locator('#gb-form').isVisible(), 'turned on, the platform form shows');
  await page.locator('#gb-server-id').fill('34020000002000000001');
  await page.locator('#gb-addr').fill('10.1.2.3:5060');
  await page.locator('#gb-transport').selectOption('tcp');
  await page.locator('#gb-device-id').fill('34020000001180000001');
  check(await page.locator('#gb-password').getAttribute('placeholder') === 'not set: type the password', 'no password is set yet');

  // An alarm input's ID for the camera: flagged as it is typed.
  await row.locator('.gb-id').fill('34020000001340000001');
  const flag = await row.locator('.gb-check').textContent();
  check(flag.includes('134') && flag.includes('131 or 132'), `the type code is flagged: ${flag}`);
  await row.locator('.gb-id').fill('');
  check(await row.locator('.gb-check').textContent() === '', 'an empty ID is not flagged (not offered)');

  // Filled from a base ID: the camera gets the base's number with its type.
  await page.locator('#gb-base').fill('34020000001340000007');
  await page.locator('#gb-fill').click();
  check(await row.locator('.gb-id').inputValue() === '34020000001320000007', 'the camera gets a network camera ID (132) from the base');
  check(await row.locator('.gb-check').textContent() === '', 'which is not flagged');

  // Saved without a password: refused, the password marked.
  await page.locator('#gb-save').click();
  await page.locator('#gb-problems li').first().waitFor();
  const probs = await page.locator('#gb-problems li').evaluateAll((lis) => lis.map((li) => li.dataset.field));
  check(probs.includes('gb28181.password'), `the refusal names the password: ${probs}`);
  check(await page.locator('#gb-password').evaluate((e) => e.classList.contains('invalid')), 'the password field is marked');
  check((await page.locator('#gb-result').getAttribute('class')).includes('bad'), 'the page says nothing was saved');
  await screenshot('gb28181-refused');

  // With the password: saved as a new revision.
  await page.locator('#gb-password').fill('browser-secret');
  await page.locator('#gb-save').click();
  await page.locator('#gb-result[data-revision]').waitFor();
  const rev = await page.locator('#gb-result').getAttribute('data-revision');
  check(await page.locator('#gb-problems li').count() === 0, 'no problems left');
  check((await page.locator('#gb-result').textContent()).includes('.secret'), 'the page says where the password is kept');
  check(await page.locator('#gb-password').inputValue() === '', 'the password is not kept on the page');
  console.log(`revision: ${rev}`);
  await screenshot('gb28181-saved');
  check(!errors.length, `no page errors: ${errors.join('; ')}`);
}

async function screenshot(name) {
  await page.screenshot({ path: join(SHOTS, name + '.png'), fullPage: true });
}
