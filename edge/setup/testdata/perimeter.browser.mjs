// The setup page's tripwire in Chromium (run by browser_test.go against a
// fake backend: SETUP_URL, SETUP_CODE, SETUP_SHOTS). Draw a line with two
// clicks on the picture (double-click finishes), set its direction, flip
// it (the "in" arrow moves to the other side), save (the Go test checks
// the saved form), turn the live preview on and see the track cross the
// line and the crossing shown.
import { chromium } from 'playwright-core';
import { join } from 'node:path';

const URL = process.env.SETUP_URL;
const CODE = process.env.SETUP_CODE;
const SHOTS = process.env.SETUP_SHOTS || '.';
if (!URL || !CODE) {
  console.error('run through go test ./edge/setup/ -run TestPerimeterInBrowser');
  process.exit(2);
}

function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
  console.log(`ok - ${msg}`);
}

// near reports whether a pixel of the canvas within 3 of (x, y) (its own
// pixels) passes is.
async function near(page, x, y, is) {
  const d = await page.locator('#zone-canvas').evaluate((c, [x, y]) => [...c.getContext('2d').getImageData(x - 3, y - 3, 7, 7).data], [x, y]);
  for (let i = 0; i < d.length; i += 4) if (is([d[i], d[i + 1], d[i + 2]])) return true;
  return false;
}
const cyan = ([r, g, b]) => r < 90 && g > 170 && b > 170;
const arrowTip = async (page) => (await page.locator('#perimeter-list li[data-line="fence"]').getAttribute('data-arrow')).split(',').map(Number);

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await (await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 1000 } })).newPage();
const errors = [];
page.on('pageerror', (e) => { errors.push(e.message); console.log(`page error: ${e.message}`); });
try {
  await page.goto(`${URL}/setup/`);
  await page.locator('#code').fill(CODE);
  await page.locator('#login-form button[type=submit]').click();
  await page.locator('#steps').waitFor();

  // The camera's picture on the drawing step.
  await page.locator('#zone-camera').selectOption('north');
  await page.waitForFunction(() => document.getElementById('zone-canvas').width === 640 && document.getElementById('zone-canvas').height === 360);
  await page.locator('#zone-kind').selectOption('line');
  check(await page.locator('#line-dir').isVisible(), 'the line tool offers its direction');
  await page.locator('#zone-name').fill('fence');
  await page.locator('#line-dir').selectOption('out');

  // Two clicks on the picture, left to right across the middle; a
  // double-click on the second finishes the line.
  const canvas = page.locator('#zone-canvas');
  await canvas.scrollIntoViewIfNeeded();
  const box = await canvas.boundingBox();
  await page.mouse.click(box.x + 0.2 * box.width, box.y + 0.5 * box.height);
  await page.mouse.dblclick(box.x + 0.8 * box.width, box.y + 0.5 * box.height);
  const row = page.locator('#perimeter-list li[data-line="fence"]');
  await row.waitFor();
  const pts = JSON.parse(await row.getAttribute('data-points'));
  check(pts.length === 2 && Math.abs(pts[0][0] - 0.2) < 0.01 && Math.abs(pts[1][0] - 0.8) < 0.01 && Math.abs(pts[0][1] - 0.5) < 0.01,
    `the line drawn by mouse has two normalised points: ${JSON.stringify(pts)}`);
  check(await row.getAttribute('data-direction') === 'out', 'the line counts the direction chosen');

  // Its direction, set on the line; the arrow points to the "in" side:
  // walking left to right, that is below the line.
  await row.locator('.l-dir').selectOption('in');
  await page.locator('#perimeter-list li[data-line="fence"][data-direction="in"]').waitFor();
  let tip = await arrowTip(page);
  check(tip[1] > 0.55 && Math.abs(tip[0] - 0.5) < 0.01, `the "in" arrow points below the line drawn left to right: ${tip}`);
  check(await near(page, 320, 194, cyan) && !await near(page, 320, 166, cyan), 'the arrow is drawn below the line');
  await screenshot('perimeter-line');

  // Flipped: the points reversed, the arrow above.
  await row.locator('.l-flip').click();
  tip = await arrowTip(page);
  check(tip[1] < 0.45, `flipped, the arrow points above the line: ${tip}`);
  check(await near(page, 320, 166, cyan) && !await near(page, 320, 194, cyan), 'the arrow is drawn above the line');

  // Saved with the zones (the Go test checks the saved form).
  await page.locator('#zone-apply').click();
  await page.locator('#zone-saved').filter({ hasText: 'r2' }).waitFor();
  check(true, 'the line is saved to the camera');

  // The live preview: the track crossing the line, and the crossing.
  await page.locator('#zone-preview').check();
  const li = page.locator('#perimeter-events li.crossing[data-line="fence"][data-direction="in"]');
  await li.waitFor({ timeout: 10000 });
  const text = await li.textContent();
  check(text.includes('→ in') && text.includes('#7'), `the crossing is listed: ${text}`);
  await page.waitForFunction(() => Number(document.getElementById('perimeter-status').dataset.loads || 0) >= 2);
  // The track's path (yellow) runs from below the line to above it at x = 320.
  const yellow = ([r, g, b]) => r > 200 && g > 200 && b < 120;
  check(await near(page, 320, 225, yellow), 'the track is drawn on the picture');
  const green = await canvas.evaluate((c) => {
    const d = c.getContext('2d').getImageData(325, 140, 90, 40).data;
    for (let i = 0; i < d.length; i += 4) if (d[i] < 100 && d[i + 1] > 180 && d[i + 2] < 160) return true;
    return false;
  });
  check(green, 'the crossing flashes "→ in" on the line');
  await screenshot('perimeter-crossing');
  check(!errors.length, `no page errors: ${errors.join('; ')}`);
} catch (e) {
  await screenshot('perimeter-failed').catch(() => {});
  throw e;
} finally {
  await browser.close();
}

async function screenshot(name) {
  await page.screenshot({ path: join(SHOTS, name + '.png') });
}
