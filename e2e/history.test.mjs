// Alert history and the live wall's layouts in a real browser against
// `vigil demo`. A guard acknowledges one alert (so there is one they
// handled), drives the demo gate for two more, then on the Alert history
// page: the newest come first; filters by colour, camera, type, state and
// handler give only matching rows; pages of two go back and forth without
// losing or repeating an alert; a row opens the alert's detail and its
// playback link opens playback of the alert's camera. On the live wall,
// tiles carry camera names, a double click enlarges a tile and back, and
// a layout saved under a name is there again after a reload.
import { run, newPage, login, apiFetch, check, screenshot, simGate, waitFor } from './lib.mjs';

const rows = (page) => page.getByTestId('hist-row').evaluateAll((els) => els.map((e) => ({
  id: e.dataset.alertId, seq: Number(e.dataset.seq), severity: e.dataset.severity, state: e.dataset.state,
  kind: e.dataset.kind, handled: e.children[6].textContent })));

// rendered is how many times the rows were drawn; nextRender waits for
// a drawing after the n-th (an answer shown, however slow the machine).
const rendered = (page) => page.getByTestId('hist-rows').evaluate((e) => Number(e.dataset.renders || 0));
const nextRender = (page, n) => page.waitForFunction(
  (n) => Number(document.querySelector('[data-testid="hist-rows"]').dataset.renders || 0) > n, n, { timeout: 10000 });

// apply sets the filters (name → value; '' clears) and waits for the answer.
async function apply(page, filters) {
  for (const [sel, v] of Object.entries(filters)) {
    const el = page.getByTestId(sel);
    if (await el.evaluate((e) => e.tagName) === 'SELECT') await el.selectOption(v);
    else await el.fill(v);
  }
  const n = await rendered(page);
  await page.getByTestId('hist-apply').click();
  await nextRender(page, n);
}

await run(async (browser) => {
  const page = await newPage(browser);
  const guard = await login(page, 'guard');

  // Two alerts from the gate, and one (the newest raised) this guard handles.
  await simGate('forced');
  await simGate('sos');
  const raised = await waitFor(async () => {
    const sos = (await apiFetch(page, '/api/v1/alerts?kind=gate.sos&limit=5')).data.alerts ?? [];
    const open = (await apiFetch(page, '/api/v1/alerts?state=raised&order=desc&limit=5')).data.alerts ?? [];
    return sos.length > 0 && open.length > 0 && open;
  }, 15000);
  const mine = raised && raised[0];
  check(!!mine, 'the demo has a raised alert');
  const ack = await apiFetch(page, `/api/v1/alerts/${encodeURIComponent(mine.id)}/acknowledge`, { method: 'POST', body: {} });
  check(ack.status === 200, `the guard acknowledges ${mine.id} (${ack.status})`);

  await page.evaluate(() => localStorage.setItem('vigil.history.page', '2'));
  await page.reload();
  await page.getByTestId('nav-history').click();
  await page.getByTestId('hist-row').first().waitFor({ timeout: 10000 });
  const first = await rows(page);
  check(first.length === 2 && first[0].seq > first[1].seq, `newest first, two a page (seqs ${first.map((r) => r.seq).join(', ')})`);

  // Paging: older pages hold older alerts, none twice; newer comes back.
  const seen = new Set(first.map((r) => r.id));
  let last = first;
  for (let i = 0; i < 2; i++) {
    if (await page.getByTestId('hist-older').isDisabled()) break;
    const n = await rendered(page);
    await page.getByTestId('hist-older').click();
    await nextRender(page, n);
    const next = await rows(page);
    check(next.length > 0 && next.every((r) => r.seq < Math.min(...last.map((x) => x.seq)) && !seen.has(r.id)),
      `page ${i + 2} holds older alerts, none seen before (seqs ${next.map((r) => r.seq).join(', ')})`);
    for (const r of next) seen.add(r.id);
    last = next;
  }
  check(await page.getByTestId('hist-page').textContent() !== '', 'the page number is shown');
  while (!(await page.getByTestId('hist-newer').isDisabled())) {
    const n = await rendered(page);
    await page.getByTestId('hist-newer').click();
    await nextRender(page, n);
  }
  check(JSON.stringify((await rows(page)).map((r) => r.id)) === JSON.stringify(first.map((r) => r.id)), 'newer goes back to the first page');

  await page.evaluate(() => localStorage.setItem('vigil.history.page', '50'));
  await page.reload();
  await page.getByTestId('hist-row').first().waitFor({ timeout: 10000 });

  // Filters.
  await apply(page, { 'hist-colour': 'red' });
  let r = await rows(page);
  check(r.length > 0 && r.every((x) => x.severity === 'red'), `colour red: ${r.length} rows, all red`);
  await apply(page, { 'hist-colour': '', 'hist-kind': 'gate.sos' });
  r = await rows(page);
  check(r.length > 0 && r.every((x) => x.kind === 'gate.sos'), `type alarm button: ${r.length} rows, all gate.sos`);
  await apply(page, { 'hist-kind': '', 'hist-device': 'camera:south-gate' });
  r = await rows(page);
  const south = await apiFetch(page, '/api/v1/alerts?order=desc&camera=south-gate&limit=50');
  check(r.length > 0 && JSON.stringify(r.map((x) => x.id)) === JSON.stringify((south.data.alerts ?? []).map((a) => a.id)),
    `camera south-gate: ${r.length} rows, the alerts of that camera`);
  check((south.data.alerts ?? []).every((a) => a.source === 'south-gate' || (a.links ?? []).some((l) => l.camera === 'south-gate')), 'each names south-gate');
  await apply(page, { 'hist-device': '', 'hist-handled-by': guard });
  r = await rows(page);
  check(r.some((x) => x.id === mine.id) && r.every((x) => x.handled.split(', ').includes(guard)), `handled by ${guard}: ${r.length} rows, with the acknowledged one`);
  await apply(page, { 'hist-handled-by': '', 'hist-state': 'acknowledged' });
  r = await rows(page);
  check(r.length > 0 && r.every((x) => x.state === 'acknowledged'), `state acknowledged: ${r.length} rows`);
  await apply(page, { 'hist-state': '', 'hist-colour': 'red', 'hist-kind': 'gate.forced' });
  r = await rows(page);
  check(r.length > 0 && r.every((x) => x.kind === 'gate.forced' && x.severity === 'red'), `red and forced open together: ${r.length} rows`);
  await apply(page, { 'hist-colour': '', 'hist-kind': '' });
  await page.setViewportSize({ width: 1280, height: 900 });
  await screenshot(page, 'history');

  // A row opens the detail; its playback link opens the recording.
  await page.locator(`[data-testid="hist-row"][data-alert-id="${mine.id}"] td`).first().click();
  await page.waitForFunction((id) => document.querySelector('[data-testid="detail-view"]')?.dataset.alertId === id && !document.querySelector('[data-testid="detail-view"]').hidden, mine.id, { timeout: 10000 });
  check(true, 'a row opens the alert detail');
  await page.goBack();
  await page.locator(`[data-testid="hist-row"][data-alert-id="${mine.id}"] [data-testid="hist-playback"]`).click();
  await page.waitForFunction(() => window.vigilPlayback && window.vigilPlayback.firstFrameMs() !== null, null, { timeout: 20000 });
  const cams = (await page.evaluate(() => window.vigilPlayback.cameras())).map((c) => c.camera);
  const want = [mine.source, ...(mine.links ?? []).map((l) => l.camera)];
  check(cams.some((c) => want.includes(c)), `a row's playback link opens playback of its cameras (${cams.join(', ')}; first frame ${await page.evaluate(() => window.vigilPlayback.firstFrameMs())} ms)`);
  const head = await page.evaluate(() => Date.parse(window.vigilPlayback.wallTime()));
  // 20 s before it (or the first recorded moment after that, when the demo began since).
  check(head >= Date.parse(mine.time) - 25000 && head <= Date.parse(mine.time) + 2000,
    `at the alert's moment (${((Date.parse(mine.time) - head) / 1000).toFixed(1)} s before it)`);

  // The live wall: names, enlarge, a saved layout.
  await page.getByTestId('nav-live').click();
  await page.getByTestId('live-layout-4').click();
  const tile = page.getByTestId('live-tile').first();
  await tile.waitFor({ timeout: 10000 });
  const labels = await page.locator('[data-testid="live-grid"] .live-label').allTextContents();
  check(labels.includes('North gate') && labels.includes('South gate (closed at night)'), `tiles are labelled with camera names (${labels.join(', ')})`);
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="live-video"]')].every((v) => v.readyState >= 2), null, { timeout: 20000 });
  const alerted = await waitFor(() => page.locator('[data-testid="live-tile"][data-alert]').count(), 5000);
  check(alerted > 0, `a tile whose camera has an open alert is marked (${alerted})`);
  await screenshot(page, 'live-wall');
  const small = (await tile.boundingBox()).width;
  await tile.dblclick();
  const big = (await tile.boundingBox()).width;
  check(big > small * 1.5 && await page.getByTestId('live-tile').nth(1).isHidden(), `a double click enlarges a tile (${Math.round(small)} → ${Math.round(big)} px)`);
  await tile.dblclick();
  check(await page.getByTestId('live-tile').nth(1).isVisible(), 'and again goes back');
  await page.getByTestId('live-pick').first().selectOption('demo-north-gate/south-gate');
  await page.getByTestId('live-layout-1').click();
  const name = `e2e-${Date.now()}`;
  await page.getByTestId('live-save-name').fill(name);
  await page.getByTestId('live-save').click();
  await page.getByTestId('live-note').filter({ hasText: /\S/ }).waitFor();
  const saved = await apiFetch(page, '/api/v1/me/layouts');
  const l = (saved.data.layouts ?? []).find((x) => x.name === name);
  check(l && l.grid === 1 && l.tiles[0] === 'demo-north-gate/south-gate' && saved.data.current === name, `the layout is saved for the user (${JSON.stringify(l)})`);
  await page.reload();
  await page.getByTestId('live-tile').first().waitFor({ timeout: 10000 });
  await page.waitForFunction((n) => document.querySelector('[data-testid="live-saved"]')?.value === n, name, { timeout: 10000 });
  const after = await page.getByTestId('live-tile').evaluateAll((els) => els.map((e) => e.dataset.camera));
  check(after.length === 1 && after[0] === 'demo-north-gate/south-gate', `after a reload the wall shows the saved layout (${after.join(', ')})`);
  await page.getByTestId('live-saved').selectOption('');
  await page.getByTestId('live-layout-4').click();
  await page.getByTestId('live-tile').nth(1).waitFor({ timeout: 10000 });
  check((await apiFetch(page, '/api/v1/me/layouts')).data.current === '', 'back to all cameras');
});
