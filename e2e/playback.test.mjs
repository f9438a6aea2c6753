// Recorded playback in a real browser against `vigil demo`. The demo's
// control first stops the south-gate camera's video for 12 s (its
// connection stays up: the edge records a gap). A guard then opens
// playback of the north-gate and south-gate cameras two minutes back (or
// as far back as the demo has recorded): both <video> elements play and
// their media times agree within 0.5 s; a click on an alert marker of the
// timeline moves the playhead to the alert's moment (the wall clock shown
// within 1 s of it); "open in playback" on an alert's detail starts 20 s
// before the alert; the south-gate timeline shows a gap over the frozen
// interval (within 3 s at each end); an admin finds the guard's playback
// entries (cameras and range) in the audit log. Logs the time from each
// click to the first picture.
import { run, newPage, login, apiFetch, check, screenshot, readJSON, waitFor, URL } from './lib.mjs';

const NORTH = 'demo-north-gate/north-gate';
const SOUTH = 'demo-north-gate/south-gate';
const FREEZE_S = 12;
const PRE_MS = 20000; // "open in playback" starts this long before the alert
const HALF_MS = 15 * 60000; // a session covers the moment ± this (up to now)

// freeze stops a demo camera's video for seconds (the demo's control).
async function freeze(camera, seconds) {
  const d = readJSON('demo.json');
  const r = await fetch(`${d.control_url}/cameras/${camera}/freeze`, {
    method: 'POST', headers: { Authorization: `Bearer ${d.control_token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ seconds }) });
  const body = await r.json();
  if (r.status !== 200) throw new Error(`freeze ${camera}: ${r.status} ${JSON.stringify(body)}`);
  return { from: Date.parse(body.from), to: Date.parse(body.to) };
}

// open shows playback of cams at atMs as a click would, and waits for the
// first picture; it returns the milliseconds from the click.
async function open(page, cams, atMs) {
  await page.evaluate(({ cams, at }) => {
    window.vigilPlaybackClickAt = performance.now();
    location.hash = `#/playback?cams=${cams.map(encodeURIComponent).join(',')}&at=${encodeURIComponent(new Date(at).toISOString())}`;
  }, { cams, at: atMs });
  return firstFrame(page);
}

async function firstFrame(page) {
  await page.waitForFunction(() => window.vigilPlayback && window.vigilPlayback.firstFrameMs() !== null, null, { timeout: 20000 });
  return page.evaluate(() => window.vigilPlayback.firstFrameMs());
}

const wallTime = (page) => page.evaluate(() => Date.parse(window.vigilPlayback.wallTime()));
const mediaTimes = (page) => page.evaluate(() => window.vigilPlayback.mediaTimes());

// recordedSince asks central (as the page's user) when both cameras'
// recordings in the last 10 minutes begin.
async function recordedSince(page) {
  const now = Date.now();
  const s = await apiFetch(page, '/api/v1/playback/sessions', { method: 'POST', body: {
    cameras: [NORTH, SOUTH].map((c) => ({ edge: c.split('/')[0], camera: c.split('/')[1] })),
    from: new Date(now - 10 * 60000).toISOString(), to: new Date(now).toISOString() } });
  check(s.status === 201, `a guard may open a playback session (${s.status})`);
  const tl = await apiFetch(page, `/api/v1/playback/sessions/${s.data.id}/timeline`);
  await apiFetch(page, `/api/v1/playback/sessions/${s.data.id}`, { method: 'DELETE' });
  const firsts = tl.data.cameras.map((c) => Math.min(...(c.spans ?? []).map((x) => Date.parse(x.start))));
  const gaps = tl.data.cameras.flatMap((c) => (c.gaps ?? []).map((g) => [Date.parse(g.start), Date.parse(g.end)]));
  return { since: Math.max(...firsts), gaps };
}

// quiet is the first moment from want on with 15 s of video on every
// camera (no gap).
function quiet(want, gaps) {
  let at = want;
  for (let moved = true; moved;) {
    moved = false;
    for (const [a, b] of gaps) {
      if (a < at + 15000 && b > at) {
        at = b + 2000;
        moved = true;
      }
    }
  }
  return at;
}

await run(async (browser) => {
  const frozen = await freeze('south-gate', FREEZE_S);
  console.log(`south-gate frozen ${new Date(frozen.from).toISOString()} – ${new Date(frozen.to).toISOString()}`);
  const page = await newPage(browser);
  const guard = await login(page, 'guard');
  await page.getByTestId('nav-playback').waitFor({ state: 'visible' });

  // Two minutes back, or as far back as both cameras have recorded.
  const { since, gaps } = await recordedSince(page);
  const at = quiet(Math.max(Date.now() - 120000, since + 3000), gaps);
  const ms1 = await open(page, [NORTH, SOUTH], at);
  console.log(`first frame ${ms1} ms after the click (open at ${new Date(at).toISOString()})`);
  check(ms1 <= 2000, `playback shows its first picture within 2 s of the click (${ms1} ms)`);
  check(await page.getByTestId('playback-video').count() === 2, 'one video per camera');
  const names = await page.getByTestId('pb-tile-name').allTextContents();
  check(names.includes('North gate') && names.includes('South gate (closed at night)'), `tiles named by camera names (${names.join(', ')})`);

  // Both play, in step.
  await page.waitForFunction(() => window.vigilPlayback.mediaTimes().every((t) => t > 0), null, { timeout: 10000 });
  const t0 = await mediaTimes(page);
  let worst = 0;
  for (let i = 0; i < 8; i++) {
    await page.waitForTimeout(500);
    const ts = await mediaTimes(page);
    worst = Math.max(worst, Math.abs(ts[0] - ts[1]));
  }
  const t1 = await mediaTimes(page);
  check(t1[0] - t0[0] >= 2.5 && t1[1] - t0[1] >= 2.5, `both videos play (advanced ${(t1[0] - t0[0]).toFixed(2)} s and ${(t1[1] - t0[1]).toFixed(2)} s in 4 s)`);
  check(worst <= 0.5, `their media times agree within 0.5 s (worst ${worst.toFixed(3)} s)`);
  await screenshot(page, 'playback');

  // Scrub to an alert marker: the wall clock shows the alert's moment.
  await page.getByTestId('pb-play').click(); // pause, so the playhead stays where it lands
  let marker = page.locator('[data-testid="timeline-alert"]:visible').first();
  if (!await marker.count()) await page.getByTestId('pb-zoom-out').click();
  marker = page.locator('[data-testid="timeline-alert"]:visible').first();
  if (!await marker.count()) {
    const list = await apiFetch(page, '/api/v1/alerts?order=desc&limit=20&camera=north-gate');
    const a = (list.data.alerts ?? []).find((x) => Date.parse(x.time) > since + 5000 && Date.parse(x.time) < Date.now() - 5000);
    check(!!a, 'the demo has a recorded alert to scrub to');
    await open(page, [NORTH, SOUTH], Date.parse(a.time) - 60000);
    await page.getByTestId('pb-play').click();
    marker = page.locator(`[data-testid="timeline-alert"][data-alert-id="${a.id}"]`).first();
    await marker.waitFor({ timeout: 15000 });
  }
  const markerTime = Date.parse(await marker.getAttribute('data-time'));
  await marker.click();
  const clock = page.getByTestId('playback-clock');
  await waitFor(async () => Math.abs(Date.parse(await clock.getAttribute('data-time')) - markerTime) <= 1000, 3000);
  const shown = Date.parse(await clock.getAttribute('data-time'));
  check(Math.abs(shown - markerTime) <= 1000, `a click on the alert marker shows its moment (clock ${new Date(shown).toISOString()}, alert ${new Date(markerTime).toISOString()})`);
  const origin = await page.evaluate(() => window.vigilPlayback.session().origin);
  const landed = await waitFor(async () => {
    const ts = await mediaTimes(page);
    return ts.every((x) => Math.abs(origin / 1000 + x - markerTime / 1000) <= 1) && ts;
  }, 5000);
  check(!!landed, `the videos are at the alert's moment (${JSON.stringify(await mediaTimes(page))})`);

  // The overlay draws the motion boxes of the alert's moment.
  await page.getByTestId('overlay-toggle').click();
  const boxes = await waitFor(() => page.evaluate(() => Math.max(...[...document.querySelectorAll('[data-testid="pb-overlay"]')].map((c) => Number(c.dataset.boxes || 0)))), 10000);
  check(boxes > 0, `the overlay shows motion boxes at the alert (${boxes} frames within 0.25 s)`);
  await page.getByTestId('overlay-toggle').click();

  // Keys: → one frame, 2 double speed.
  const before = await wallTime(page);
  await page.keyboard.press('ArrowRight');
  const stepped = await wallTime(page) - before;
  check(stepped > 0 && stepped <= 200, `→ steps one frame (${stepped.toFixed(0)} ms)`);
  await page.keyboard.press('2');
  check(await page.getByTestId('pb-speed-2').getAttribute('aria-pressed') === 'true', 'the 2 key plays at 2×');
  await page.keyboard.press('1');

  // A bookmark with a note, found again by its words.
  const note = `e2e bookmark ${Date.now()}`;
  await page.getByTestId('pb-bookmark').click();
  await page.getByTestId('pb-bookmark-note').fill(note);
  await page.getByTestId('pb-bookmark-save').click();
  await page.getByTestId('pb-bookmark-done').filter({ hasText: /\S/ }).waitFor({ timeout: 5000 });
  await page.getByTestId('pb-bookmark-q').fill(note.slice(4));
  await page.getByTestId('pb-bookmark-find').click();
  const found = page.getByTestId('pb-bookmark-result').filter({ hasText: note });
  await found.first().waitFor({ timeout: 5000 });
  check(await found.count() === 1, 'the bookmark is saved and found by its note');
  await page.locator('[data-testid="timeline-bookmark"]').first().waitFor({ state: 'attached', timeout: 15000 });
  check(true, 'and drawn on the timeline');

  // A slow link (video windows answered after 7 s) switches to keyframes
  // only; a fast one again switches back.
  await page.getByTestId('pb-play').click(); // play on
  await page.route('**/api/v1/playback/sessions/*/video?*', async (route) => {
    if (!route.request().url().includes('keyframes=1')) await new Promise((r) => setTimeout(r, 7000));
    // unroute below may have let a delayed request go on already.
    await route.continue().catch(() => {});
  });
  await page.getByTestId('pb-zoom-in').click();
  await page.evaluate(() => document.querySelector('[data-testid="pb-next-alert"]').blur());
  await page.keyboard.press('Shift+ArrowRight'); // 10 s on: windows not fetched yet
  const slow = await waitFor(() => page.evaluate(() => window.vigilPlayback.keyframesOnly()), 45000, 500);
  check(!!slow && await page.getByTestId('pb-keyframes').isVisible(), 'a slow link shows "keyframes only" and asks for keyframes');
  await page.unroute('**/api/v1/playback/sessions/*/video?*');
  const fast = await waitFor(() => page.evaluate(() => !window.vigilPlayback.keyframesOnly()), 45000, 500);
  check(!!fast && await page.getByTestId('pb-keyframes').isHidden(), 'a fast link again gets full video');

  // From an alert's detail: "open in playback" starts just before it.
  const list = await apiFetch(page, '/api/v1/alerts?order=desc&limit=100');
  const now = await recordedSince(page);
  const gapsNow = [...now.gaps, [frozen.from, frozen.to + 3000]];
  const alert = (list.data.alerts ?? []).find((x) => {
    const start = Date.parse(x.time) - PRE_MS;
    return x.edge_id === 'demo-north-gate' && start > since + 2000 && Date.parse(x.time) < Date.now() - 5000 && quiet(start, gapsNow) === start;
  });
  check(!!alert, `an alert after the recording began (${alert?.id})`);
  await page.evaluate((id) => { location.hash = `#/alert/${encodeURIComponent(id)}`; }, alert.id);
  await page.getByTestId('open-playback').click();
  const ms2 = await firstFrame(page);
  console.log(`first frame ${ms2} ms after "open in playback"`);
  const head = await wallTime(page);
  const want = Date.parse(alert.time) - PRE_MS;
  check(Math.abs(head - want) <= 3000, `open-playback puts the playhead ${((Date.parse(alert.time) - head) / 1000).toFixed(1)} s before the alert (want 20 s)`);
  const cams = (await page.evaluate(() => window.vigilPlayback.cameras())).map((c) => `${c.edge}/${c.camera}`);
  check(cams.includes(`${alert.edge_id}/${alert.source}`) || (alert.links ?? []).every((l) => cams.includes(`${alert.edge_id}/${l.camera}`)), `with the alert's cameras (${cams.join(', ')})`);
  await page.locator(`[data-testid="timeline-alert"][data-alert-id="${alert.id}"]`).first().waitFor({ state: 'attached', timeout: 15000 });
  check(true, 'and its marker on the timeline');

  // The freeze is a gap on south-gate's timeline.
  const settle = frozen.to + 5000 - Date.now();
  if (settle > 0) await page.waitForTimeout(settle);
  await open(page, [NORTH, SOUTH], frozen.from - 20000);
  const bar = page.locator(`[data-testid="timeline-bar"][data-camera="${SOUTH}"]`);
  const gap = await waitFor(async () => {
    const gaps = await bar.getByTestId('timeline-gap').evaluateAll((els) => els.map((e) => [Date.parse(e.dataset.start), Date.parse(e.dataset.end)]));
    return gaps.find(([a, b]) => Math.abs(a - frozen.from) <= 3000 && Math.abs(b - frozen.to) <= 3000);
  }, 25000, 1000);
  const all = await bar.getByTestId('timeline-gap').evaluateAll((els) => els.map((e) => `${e.dataset.start}–${e.dataset.end}`));
  check(!!gap, `south-gate's timeline has a gap over the frozen ${new Date(frozen.from).toISOString()} – ${new Date(frozen.to).toISOString()} (gaps: ${all.join(', ') || 'none'})`);
  const northGaps = await page.locator(`[data-testid="timeline-bar"][data-camera="${NORTH}"] [data-testid="timeline-gap"]`).evaluateAll((els) => els.map((e) => [Date.parse(e.dataset.start), Date.parse(e.dataset.end)]));
  check(!northGaps.some(([a, b]) => a < frozen.to && b > frozen.from), 'north-gate kept recording meanwhile');

  // A police liaison asks for the cameras and the range in view as
  // evidence; a guard has no such button.
  check(await page.getByTestId('pb-evidence-form').isHidden(), 'a guard may not request evidence from playback');
  const liaison = await newPage(browser);
  await login(liaison, 'police_liaison');
  await open(liaison, [NORTH], at);
  await liaison.getByTestId('pb-zoom-in').click(); // 2 minutes in view
  const view = await liaison.evaluate(() => window.vigilPlayback.session());
  await liaison.getByTestId('pb-evidence').click();
  const caseNo = `PB-${Date.now()}`;
  await liaison.getByTestId('pb-evidence-case').fill(caseNo);
  await liaison.getByTestId('pb-evidence-reason').fill('Browser test: from the playback page');
  await liaison.getByTestId('pb-evidence-submit').click();
  await liaison.getByTestId('pb-evidence-done').filter({ hasText: /\S/ }).waitFor({ timeout: 10000 });
  const reqs = await apiFetch(liaison, '/api/v1/evidence/requests');
  const req = (reqs.data.requests ?? []).find((x) => x.case_number === caseNo);
  const span = req ? Date.parse(req.to) - Date.parse(req.from) : 0;
  check(req && (req.items ?? []).some((it) => `${it.edge}/${it.camera}` === NORTH) && span > 60000 && span <= 120000
    && Date.parse(req.from) >= view.from - 1000 && Date.parse(req.from) <= at && Date.parse(req.to) >= at,
  `the evidence request holds the camera and the range in view (${req?.from} – ${req?.to})`);
  await liaison.context().close();

  // An admin finds the guard's playback sessions in the audit log.
  const admin = await newPage(browser);
  await login(admin, 'admin');
  const au = await apiFetch(admin, `/api/v1/audit?user=${encodeURIComponent(guard)}&action=view&limit=500`);
  const entries = (au.data.entries ?? []).filter((e) => e.details?.what === 'playback');
  const named = entries.find((e) => [NORTH, SOUTH].every((c) => (e.details.cameras ?? []).includes(c))
    && Math.abs(Date.parse(e.details.from) - (at - HALF_MS)) < 1000 && Date.parse(e.details.to) > at);
  check(!!named, `the audit log holds the guard's playback (${entries.length} entries; cameras ${named?.details.cameras}, ${named?.details.from} – ${named?.details.to})`);
  await admin.context().close();
  await page.context().close();
  console.log(`playback: first frame ${ms1} ms (open), ${ms2} ms (from an alert); URL ${URL}`);
});
