// Safety sensors in a real browser against `vigil demo` (whose edge polls
// the sensor simulator's Modbus devices, internal/demo/sensors.go): the
// Sensors page lists the demo's sensors with values inside their
// scenarios' ranges and a state each, coloured by state, with a
// sparkline; a sensor's chart is drawn from its history (its plotted
// points counted, inside the range, times increasing, the thresholds
// drawn) and switches to 7 days; the cable's warning alert carries its
// reading and a chart of the minutes before it; in Chinese the page
// says 安全监测 and the states 正常/预警/报警/无数据.
//
// Run by e2e/sensors_test.go (TestSensorsInBrowser) with
// VIGIL_SENSOR_SCENARIO, it checks instead a real central and edge whose
// gas sensor went over its alarm threshold and then fell silent
// (scenario below).
import { run, newPage, login, check, screenshot, waitFor, apiFetch } from './lib.mjs';

// The demo's sensors and the range their scenarios keep to
// (sensors/sim: cable-heating 35..85 °C, steady: base ± 2 %).
const DEMO = {
  'box1-cable': { lo: 35, hi: 85, warn: 60, alarm: 80 },
  'box1-rcm': { lo: 117.5, hi: 122.5, warn: 300, alarm: 500 },
  'kitchen-gas': { lo: 1.95, hi: 2.05, warn: 10, alarm: 25 },
  'basement-water': { lo: 7.8, hi: 8.2, warn: 30, alarm: 50 },
};
const STATES = ['normal', 'warning', 'alarm', 'silent'];
const EPS = 0.051; // registers hold tenths: 8.2 may read 8.200000000000001
const within = (v, lo, hi) => v >= lo - EPS && v <= hi + EPS;
const GREEN = 'rgb(63, 185, 80)'; // style.css --green

const cardsOf = (page) => page.getByTestId('sensor-card').evaluateAll((els) => els.map((e) => ({
  id: e.dataset.sensor, edge: e.dataset.edge, state: e.dataset.state, value: e.dataset.value,
  shown: e.querySelector('[data-testid="sensor-value"]').textContent,
  stateText: e.querySelector('[data-testid="sensor-state"]').textContent,
  edgeColour: getComputedStyle(e).borderLeftColor,
}))); 

const chartData = (page, id) => page.evaluate((id) => window.vigilSensors?.chartData(id) ?? null, id);

// increasing: each time after the one before.
const increasing = (xs) => xs.every((x, i) => i === 0 || x > xs[i - 1]);

const demo = async (browser) => {
  const page = await newPage(browser);
  await login(page, 'guard');
  await page.getByTestId('nav-sensors').click();
  await page.getByTestId('sensors-view').waitFor();

  // Every demo sensor listed with a value and a state.
  const cards = await waitFor(async () => {
    const cs = await cardsOf(page);
    return Object.keys(DEMO).every((id) => cs.some((c) => c.id === id && c.value !== '' && STATES.includes(c.state))) && cs;
  }, 30000, 500);
  check(!!cards, `the demo's sensors are listed with values and states (${cards && cards.map((c) => `${c.id}=${c.value} ${c.state}`).join(', ')})`);
  for (const [id, want] of Object.entries(DEMO)) {
    const c = cards.find((x) => x.id === id);
    const v = Number(c.value);
    check(within(v, want.lo, want.hi), `${id}: ${v} within its scenario's ${want.lo}..${want.hi}, shown as "${c.shown}"`);
  }
  const rcm = cards.find((c) => c.id === 'box1-rcm');
  check(rcm.state === 'normal' && rcm.edgeColour === GREEN && rcm.stateText === 'normal',
    `a normal sensor is green and says so (${rcm.state}, ${rcm.edgeColour}, "${rcm.stateText}")`);
  const edge = cards[0].edge;

  // Sparklines of the last hour.
  const spark = await waitFor(async () => {
    const d = await chartData(page, `spark:${edge}/box1-rcm`);
    return d && d.x.length > 0 && d;
  }, 90000, 1000);
  check(!!spark && spark.y.every((v) => within(v, DEMO['box1-rcm'].lo, DEMO['box1-rcm'].hi)) && increasing(spark.x),
    `the residual current's sparkline has ${spark?.x.length} points in range, times increasing`);
  check(await page.locator('[data-sensor="box1-rcm"] [data-testid="sensor-spark"] canvas').count() === 1, 'the sparkline is drawn on a canvas');

  // The cable's chart: 24 h, from its history.
  await page.locator('[data-testid="sensor-card"][data-sensor="box1-cable"]').click();
  await page.getByTestId('sensor-chart-panel').waitFor();
  const id = `history:${edge}/box1-cable`;
  const hist = await waitFor(async () => {
    const d = await chartData(page, id);
    if (d && d.x.length > 0) return d;
    await page.getByTestId('sensor-range-24h').click(); // ask again: the first minute may not be aggregated yet
    return null;
  }, 90000, 3000);
  check(!!hist, `the cable's 24 h chart has ${hist?.x.length} points (${hist?.step})`);
  const now = Date.now() / 1000;
  check(hist.y.every((v) => within(v, 35, 85)), `its values lie within 35..85 °C (${Math.min(...hist.y)}..${Math.max(...hist.y)})`);
  check(increasing(hist.x) && hist.x[0] > now - 24 * 3600 - 60 && hist.x.at(-1) < now + 60, 'its times increase, inside the last 24 h');
  check(hist.warn === 60 && hist.alarm === 80, `its thresholds are drawn at warning ${hist.warn} and alarm ${hist.alarm}`);
  check(await page.locator('[data-testid="sensor-chart"] canvas').count() === 1, 'the chart is drawn on a canvas');
  check(Number(await page.getByTestId('sensor-chart').getAttribute('data-points')) === hist.x.length, 'the chart says how many points it plotted');

  const answered = page.waitForResponse((r) => r.url().includes('/box1-cable/history?'));
  await page.getByTestId('sensor-range-7d').click();
  const resp = await answered;
  const span = (() => { const u = new URL(resp.url()); return Date.parse(u.searchParams.get('to')) - Date.parse(u.searchParams.get('from')); })();
  check(span === 7 * 86400e3, '7 days asks the history of 7 days');
  const week = await waitFor(async () => {
    const d = await chartData(page, id);
    return d && d.x.length > 0 && (await page.getByTestId('sensor-chart-panel').getAttribute('data-range')) === '7d' && d;
  }, 10000);
  check(!!week && week.y.every((v) => within(v, 35, 85)) && increasing(week.x), `the 7-day chart has ${week?.x.length} points in range`);

  // The cable passes 60 °C every demo cycle: its warning alert carries
  // the reading, the rule and threshold, and the minutes before it.
  const alert = await waitFor(async () => {
    const r = await apiFetch(page, '/api/v1/alerts?kind=sensor.warning&limit=20');
    return (r.data?.alerts ?? []).find((a) => a.source === 'box1-cable' && a.sensor);
  }, 150000, 2000);
  check(!!alert, `the cable raised a sensor.warning alert (${alert?.id})`);
  check(alert.sensor.rule === 'warning' ? alert.sensor.threshold === 60 && alert.sensor.value >= 60 : alert.sensor.rule === 'rate_of_rise',
    `the alert says rule ${alert.sensor.rule}, threshold ${alert.sensor.threshold}, value ${alert.sensor.value}`);
  await page.goto(`${page.url().split('#')[0]}#/alert/${encodeURIComponent(alert.id)}`);
  await page.getByTestId('detail-sensor').waitFor();
  const facts = await page.getByTestId('sensor-facts').textContent();
  check(facts.includes('°C') && facts.includes('Cable temperature'), `the detail states the reading: "${facts}"`);
  const ad = await waitFor(async () => {
    const d = await chartData(page, `alert:${alert.id}`);
    return d && d.x.length > 0 && d;
  }, 10000);
  check(!!ad && ad.x.length === (alert.sensor.recent ?? []).length && increasing(ad.x) && ad.y.every((v) => within(v, 35, 85)),
    `the alert's chart plots its ${ad?.x.length} recent readings`);
  check(alert.sensor.rule !== 'warning' || ad.warn === 60, `the crossed threshold is drawn (${ad.warn})`);
  check(await page.locator('[data-testid="sensor-alert-chart"] canvas').count() === 1, "the alert's chart is drawn");

  // The page for the documentation: the cable's day, past its thresholds.
  await page.getByTestId('nav-sensors').click();
  await page.locator('[data-testid="sensor-card"][data-sensor="box1-cable"]').click();
  await page.getByTestId('sensor-range-24h').click();
  check(!!await waitFor(async () => (await chartData(page, id))?.x.length > 0 && (await page.getByTestId('sensor-chart-panel').getAttribute('data-range')) === '24h', 10000),
    'back to the 24 h chart');
  await page.setViewportSize({ width: 1280, height: 1000 });
  await screenshot(page, 'sensors');
  await page.setViewportSize({ width: 1280, height: 800 });

  // In Chinese.
  await page.getByTestId('lang-select').selectOption('zh-CN');
  const zhNav = await page.getByTestId('nav-sensors').textContent();
  check(zhNav === '安全监测', `the menu says ${zhNav}`);
  const zhCards = await waitFor(async () => {
    const cs = await cardsOf(page);
    return cs.length && cs.every((c) => ['正常', '预警', '报警', '无数据'].includes(c.stateText)) && cs;
  }, 10000);
  check(!!zhCards, `states in Chinese: ${zhCards && [...new Set(zhCards.map((c) => c.stateText))].join(', ')}`);
  check((await page.getByTestId('sensor-range-7d').textContent()) === '7 天', 'the range buttons in Chinese');
  await page.getByTestId('lang-select').selectOption('en');
};

// ---------- the Go test's scenario (TestSensorsInBrowser) ----------

const YELLOW = 'rgb(245, 197, 66)'; // style.css --yellow
const RED = 'rgb(229, 72, 77)'; // style.css --red
const NOTE = 'Gas valve closed, kitchen aired; fitter called';

// beijing is an instant as the console writes it: Beijing time, hh:mm:ss.
const beijing = (iso) => new Date(Date.parse(iso) + 8 * 3600e3).toISOString().slice(11, 19);

// scenario: sc is the Go test's {edge, sensor, alert (the alarm's ID),
// value, warn, alarm, last (the last reading), last_time, recent (the
// alarm's recent readings), unit}.
const scenario = async (browser, sc) => {
  const key = `${sc.edge}/${sc.sensor}`;
  const valueText = `${sc.value} ${sc.unit}`;
  const page = await newPage(browser);
  await login(page, 'guard');

  // The queue card: the reading against the threshold in red and a
  // sparkline of the readings before the alarm, not "no picture".
  const card = page.locator(`[data-testid="alert-card"][data-alert-id="${sc.alert}"]`);
  await card.waitFor({ timeout: 15000 });
  const reading = card.locator('[data-testid="card-sensor"] [data-testid="sensor-reading"]');
  await reading.waitFor();
  const cardText = await reading.textContent();
  check(await reading.getAttribute('data-level') === 'red' && cardText.includes(valueText) && cardText.includes(`alarm threshold ${sc.alarm.toFixed(1)} ${sc.unit}`),
    `the alarm's card says "${cardText}", level red`);
  check(await reading.locator('.sn-reading-value').evaluate((e) => getComputedStyle(e).color) === RED, 'the reading is red');
  check(await card.locator('.nosnap').count() === 0 && !(await card.textContent()).includes('no picture'), 'the card does not say "no picture"');
  const cardChart = await waitFor(async () => { const d = await chartData(page, `card:${sc.alert}`); return d && d.x.length > 0 && d; }, 10000);
  check(!!cardChart && cardChart.x.length === sc.recent && cardChart.alarm === sc.alarm && increasing(cardChart.x),
    `the card's sparkline plots the ${cardChart?.x.length} readings before the alarm with the alarm line at ${cardChart?.alarm}`);
  check(await card.locator('[data-testid="card-sensor-chart"] canvas').count() === 1, "the card's sparkline is drawn");
  const silentCard = page.locator('[data-testid="alert-card"][data-kind="sensor.silent"]');
  await silentCard.waitFor({ timeout: 15000 });
  const silentReading = silentCard.locator('[data-testid="sensor-reading"]');
  check(await silentReading.getAttribute('data-level') === 'yellow' && (await silentReading.textContent()).includes('silent'),
    `the silent sensor's card is yellow: "${await silentReading.textContent()}"`);

  // The pop-up of the red alarm: the same, bigger.
  const pop = page.getByTestId('alarm-popup');
  await pop.waitFor({ timeout: 10000 });
  check(await pop.getAttribute('data-alert-id') === sc.alert, 'the pop-up shows the alarm');
  const popReading = page.locator('[data-testid="popup-sensor"] [data-testid="sensor-reading"]');
  await popReading.waitFor();
  check(await popReading.getAttribute('data-level') === 'red' && (await popReading.textContent()).includes(valueText), `the pop-up says "${await popReading.textContent()}"`);
  const popChart = await waitFor(async () => { const d = await chartData(page, `popup:${sc.alert}`); return d && d.x.length > 0 && d; }, 10000);
  check(!!popChart && popChart.x.length === sc.recent, `the pop-up's chart plots ${popChart?.x.length} readings`);
  check(!(await page.getByTestId('popup-picture').textContent()).includes('no picture'), 'the pop-up does not say "no picture"');

  // The detail: the reading in large, red, and the chart with the alarm line.
  await page.getByTestId('popup-open').click();
  await page.getByTestId('detail-sensor').waitFor();
  const big = page.locator('[data-testid="detail-sensor"] [data-testid="sensor-reading"]');
  check(await big.getAttribute('data-level') === 'red' && (await big.textContent()).includes(valueText), `the detail says "${await big.textContent()}"`);
  const ad = await waitFor(async () => { const d = await chartData(page, `alert:${sc.alert}`); return d && d.x.length > 0 && d; }, 10000);
  check(!!ad && ad.x.length === sc.recent && ad.alarm === sc.alarm && ad.y.at(-1) === sc.value,
    `the detail's chart plots ${ad?.x.length} readings up to ${ad?.y.at(-1)} with the alarm line at ${ad?.alarm}`);
  const width = await page.locator('[data-testid="sensor-alert-chart"] canvas').evaluate((c) => c.getBoundingClientRect().width);
  check(width >= 320, `the detail's chart is large (${Math.round(width)} px wide)`);
  check(!(await page.getByTestId('detail-snapshots').textContent()).includes('no picture'), 'the detail does not say "no picture"');
  check(await page.getByTestId('detail-media').isHidden(), 'nor shows empty picture and video panes');
  await page.getByTestId('alarm-popup').waitFor({ state: 'hidden', timeout: 5000 });
  await screenshot(page, 'sensor-alert');

  // The guard works it: acknowledge, dispatch, resolve with a note.
  const stateOf = async () => (await apiFetch(page, `/api/v1/alerts/${encodeURIComponent(sc.alert)}`)).data?.state;
  await page.getByTestId('btn-ack').click();
  check(await waitFor(async () => (await stateOf()) === 'acknowledged', 10000), 'acknowledged');
  await page.getByTestId('dispatch-to').fill('patrol 2');
  await page.getByTestId('btn-dispatch').click();
  check(await waitFor(async () => (await stateOf()) === 'dispatched', 10000), 'dispatched to patrol 2');
  await page.getByTestId('resolve-note').fill(NOTE);
  await page.getByTestId('btn-resolve').click();
  check(await waitFor(async () => (await stateOf()) === 'resolved', 10000), 'resolved with a note');

  // The sensor page: the sensor is silent, distinctly, and says since when.
  await page.getByTestId('nav-sensors').click();
  const sCard = page.locator(`[data-testid="sensor-card"][data-sensor="${sc.sensor}"]`);
  check(!!await waitFor(async () => (await sCard.count()) === 1 && (await sCard.getAttribute('data-state')) === 'silent', 15000), 'the sensor page shows the sensor silent');
  const since = page.locator(`[data-testid="sensor-card"][data-sensor="${sc.sensor}"] [data-testid="sensor-silent-since"]`);
  const sinceText = await since.textContent();
  check(await since.isVisible() && sinceText.includes(`No reading since ${beijing(sc.last_time)}`), `it says "${sinceText}"`);
  const look = await sCard.evaluate((e) => ({ edge: getComputedStyle(e).borderLeftColor, style: getComputedStyle(e).borderTopStyle,
    state: e.querySelector('[data-testid="sensor-state"]').textContent, value: e.querySelector('[data-testid="sensor-value"]').textContent }));
  check(look.edge === YELLOW && look.style === 'dashed' && look.state === 'sensor silent', `silent looks apart: ${JSON.stringify(look)}`);
  check(look.value === `${sc.last} ${sc.unit}`, `its last value is shown (${look.value})`);
  await screenshot(page, 'sensors-silent');

  // The site map: the sensor at its site, silent, linking to its chart.
  await page.getByTestId('nav-sites').click();
  const onMap = page.locator(`[data-testid="site-sensor"][data-sensor="${sc.sensor}"]`);
  await onMap.waitFor({ timeout: 15000 });
  check(await onMap.getAttribute('data-state') === 'silent' && (await onMap.getByTestId('site-sensor-state').textContent()) === 'sensor silent',
    'the site map shows the sensor silent');
  const ring = await onMap.locator('.site-sensor-dot').evaluate((e) => getComputedStyle(e).borderTopColor);
  check(ring === YELLOW, `its dot has a yellow ring (${ring})`);
  const tile = await onMap.evaluate((e) => e.closest('[data-testid="site-tile"]')?.dataset.siteId);
  check(tile === 'village-9', `it is on its site's tile (${tile})`);
  await screenshot(page, 'sites-sensors');
  await onMap.click();
  await page.getByTestId('sensor-chart-panel').waitFor();
  check(page.url().includes(`#/sensors?sensor=${encodeURIComponent(key)}`), `the map links to the sensor page (${page.url()})`);
  const hist = await waitFor(async () => { const d = await chartData(page, `history:${key}`); return d && d.x.length > 0 && d; }, 15000);
  check(!!hist && hist.warn === sc.warn && hist.alarm === sc.alarm && (await page.getByTestId('sensor-chart-panel').getAttribute('data-sensor')) === sc.sensor,
    `clicking opens its chart (${hist?.x.length} points, thresholds ${hist?.warn}/${hist?.alarm})`);

  // In Chinese: silent is 无数据, since when in Chinese.
  await page.getByTestId('lang-select').selectOption('zh-CN');
  const zh = await waitFor(async () => {
    const t = await since.textContent();
    return t.includes('起无数据') && t;
  }, 10000);
  check(!!zh, `in Chinese: "${zh}"`);
  await page.getByTestId('lang-select').selectOption('en');

  // The supervisor's shift report lists the alarm with its reading and disposal.
  const sup = await newPage(browser);
  await login(sup, 'supervisor');
  await sup.getByTestId('nav-report').click();
  const row = sup.locator(`[data-testid="report-sensor"][data-alert-id="${sc.alert}"]`);
  await row.waitFor({ timeout: 15000 });
  const cells = await row.locator('td').allTextContents();
  check(cells[2].includes(valueText) && cells[2].includes(`alarm threshold ${sc.alarm.toFixed(1)}`), `the report's reading: "${cells[2]}"`);
  check(await row.locator('[data-testid="sensor-reading"]').getAttribute('data-level') === 'red', 'in red');
  check(cells[3] === 'resolved' && cells[4] === 'patrol 2' && cells[5] === NOTE && cells[6] === 'sensor-guard',
    `its state, dispatch, disposal and who resolved it: ${JSON.stringify(cells.slice(3))}`);
  await sup.getByTestId('lang-select').selectOption('zh-CN');
  check((await sup.locator('h3', { hasText: '传感器告警' }).count()) === 1, 'the report says 传感器告警 in Chinese');
};

const SC = process.env.VIGIL_SENSOR_SCENARIO ? JSON.parse(process.env.VIGIL_SENSOR_SCENARIO) : null;
await run(SC ? (browser) => scenario(browser, SC) : demo);
