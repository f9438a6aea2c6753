// Safety sensors in a real browser against `vigil demo` (whose edge polls
// the sensor simulator's Modbus devices, internal/demo/sensors.go): the
// Sensors page lists the demo's sensors with values inside their
// scenarios' ranges and a state each, coloured by state, with a
// sparkline; a sensor's chart is drawn from its history (its plotted
// points counted, inside the range, times increasing, the thresholds
// drawn) and switches to 7 days; the cable's warning alert carries its
// reading and a chart of the minutes before it; in Chinese the page
// says 安全监测 and the states 正常/预警/报警/无数据.
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

await run(async (browser) => {
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
});
