// The setup page's sensors step in Chromium (run by the edge's
// setup_sensors_test.go against a running edge: SETUP_URL, SETUP_CODE,
// SETUP_SHOTS). The sensor the box already has shows its live reading
// and the self-test says every sensor has reported; a sensor added on
// the page with its warning above its alarm is refused with that field
// marked, and saved once it is right (the Go test checks the revision).
import { chromium } from 'playwright-core';
import { join } from 'node:path';

const URL = process.env.SETUP_URL;
const CODE = process.env.SETUP_CODE;
const SHOTS = process.env.SETUP_SHOTS || '.';
if (!URL || !CODE) {
  console.error('run through go test ./edge/ -run TestSensorsStepInBrowser');
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

  // The sensor the box has, with its reading as the box judges it.
  const cable = page.locator('#sensor-forms .sensor-form[data-sensor="cable-3"]');
  await cable.waitFor();
  check(await cable.locator('.s-kind').inputValue() === 'cable_temperature', 'the configured sensor is shown with its kind');
  check(await cable.locator('.s-warn').getAttribute('placeholder') === '60', "its empty warning threshold shows the kind's default (60)");
  const live = cable.locator('.s-live[data-state="normal"]');
  await live.waitFor({ timeout: 15000 });
  const text = await live.textContent();
  check(text.includes('31.5') && text.includes('°C'), `its live reading is shown: ${text}`);
  check(await page.locator('#modbus-models details[data-model="acrel-arcm300"]').count() === 1, 'the register maps are shown');

  // The self-test: every sensor has reported.
  await page.locator('#selftest').click();
  const chk = page.locator('#selftest-checks li[data-check="sensors"]');
  await chk.waitFor({ timeout: 20000 });
  check(await chk.getAttribute('class') === 'green', `the self-test's sensors check is green: ${await chk.textContent()}`);

  // A new gas sensor from a Zigbee2MQTT device, its warning above its alarm.
  await page.locator('#sensor-add').click();
  const gas = page.locator('#sensor-forms .sensor-form[data-index="1"]');
  await gas.locator('.s-id').fill('gas-2');
  await gas.locator('.s-name').fill('Kitchen gas');
  await gas.locator('.s-kind').selectOption('gas');
  await gas.locator('.s-source').selectOption('zigbee');
  check(await gas.locator('.s-id').inputValue() === 'gas-2', 'what was typed stays when the source changes');
  await gas.locator('.s-zdevice').fill('kitchen-gas');
  await gas.locator('.s-field').fill('gas_density');
  await gas.locator('.s-warn').fill('30');
  await gas.locator('.s-alarm').fill('20');
  await page.locator('#sensors-save').click();
  await page.locator('#sensors-problems li').first().waitFor();
  const probs = await page.locator('#sensors-problems li').evaluateAll((lis) => lis.map((li) => li.dataset.field));
  check(probs.includes('sensors[1].warn'), `the refusal names the warning threshold: ${probs}`);
  check(await gas.locator('.s-warn').evaluate((e) => e.classList.contains('invalid')), 'the warning field is marked');
  check((await page.locator('#sensors-result').getAttribute('class')).includes('bad'), 'the page says nothing was saved');
  await screenshot('sensors-refused');

  // Right this time: saved as a new revision.
  await gas.locator('.s-warn').fill('10');
  await page.locator('#sensors-save').click();
  await page.locator('#sensors-result[data-revision]').waitFor();
  const rev = await page.locator('#sensors-result').getAttribute('data-revision');
  check(await page.locator('#sensors-problems li').count() === 0, 'no problems left');
  console.log(`revision: ${rev}`);
  await screenshot('sensors-saved');
  check(!errors.length, `no page errors: ${errors.join('; ')}`);
} catch (e) {
  await screenshot('sensors-failed').catch(() => {});
  throw e;
} finally {
  await browser.close();
}

async function screenshot(name) {
  await page.screenshot({ path: join(SHOTS, name + '.png'), fullPage: true });
}
