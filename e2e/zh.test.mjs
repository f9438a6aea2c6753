// The console in Chinese, every page: queue, an alert's detail, live wall,
// site map, evidence, audit, admin, shift report, fleet. On each page every
// visible Latin word must come from the zh-CN dictionary (Vigil, CSV, UTC …)
// or from the data the API returns (names, IDs, notes): anything else is
// English that escaped translation. The data is read from the API right
// after each page is checked, without the fields the console translates
// (kind, state, severity, role, level, action, status) or replaces (the
// edge's English summary).
import { URL, run, login, newPage, check, apiFetch, screenshot, waitFor } from './lib.mjs';

const TRANSLATED = new Set(['summary', 'kind', 'state', 'severity', 'role', 'level', 'action', 'status', 'colour', 'reason', 'error', 'door', 'time_source', 'codec', 'message']);
const WORD = /[A-Za-z][A-Za-z]+/g;
// Shown on purpose in their own language: the language picker.
const ALWAYS = new Set(['English']);
// The pages whose Chinese screenshots the README shows.
const SHOT_PAGES = new Set(['queue', 'report']);

function dataWords(v, out, key = '', raw = false) {
  if (v === null || v === undefined) return out;
  if (typeof v === 'string' || (raw && typeof v !== 'object')) {
    if (raw || !TRANSLATED.has(key)) for (const w of String(v).match(WORD) ?? []) out.add(w);
  } else if (Array.isArray(v)) {
    for (const x of v) dataWords(x, out, key, raw);
  } else if (typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      // An audit entry's details are shown as they are: names and values.
      const r = raw || k === 'details';
      if (r) for (const w of k.match(WORD) ?? []) out.add(w);
      dataWords(x, out, k, r);
    }
  }
  return out;
}

async function apiData(page) {
  const paths = ['/api/v1/alerts?limit=1000', '/api/v1/sites', '/api/v1/edges', '/api/v1/users', '/api/v1/audit?limit=1000',
    '/api/v1/evidence/requests', '/api/v1/selftests', '/api/v1/session', '/api/v1/sensors'];
  const words = new Set();
  for (const p of paths) {
    const r = await apiFetch(page, p);
    if (r.status === 200) dataWords(r.data, words);
  }
  return words;
}

async function visibleWords(page) {
  return page.evaluate(() => {
    const out = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const e = n.parentElement;
      if (!e || !n.textContent.trim()) continue;
      if (['SCRIPT', 'STYLE', 'TEMPLATE', 'OPTION'].includes(e.tagName)) continue;
      if (e.closest('[hidden]')) continue;
      const r = e.getBoundingClientRect();
      const cs = getComputedStyle(e);
      if (r.width === 0 || r.height === 0 || cs.visibility === 'hidden' || cs.display === 'none') continue;
      out.push(n.textContent.trim());
    }
    // the chosen option of each select is visible text too
    for (const s of document.querySelectorAll('select')) if (s.selectedOptions[0] && s.offsetParent) out.push(s.selectedOptions[0].textContent.trim());
    return out;
  });
}

await run(async (browser) => {
  const page = await newPage(browser, { locale: 'zh-CN' });
  await login(page, 'admin');
  await page.locator('[data-testid=conn-status][data-state=live]').waitFor({ timeout: 10000 });
  check((await page.locator('html').getAttribute('lang')) === 'zh-CN', 'a zh-CN browser gets the Chinese console');
  const zh = (await page.evaluate(async () => (await import('/i18n/zh-CN.js')).default));
  const dictWords = new Set(Object.values(zh).flatMap((v) => v.match(/[A-Za-z][A-Za-z]+/g) ?? []));

  async function checkPage(name) {
    await page.waitForTimeout(1500); // let the page fill in
    const texts = await visibleWords(page);
    const data = await apiData(page);
    const bad = new Map();
    for (const s of texts) {
      for (const w of s.match(WORD) ?? []) {
        if (!dictWords.has(w) && !data.has(w) && !ALWAYS.has(w)) bad.set(w, s.slice(0, 80));
      }
    }
    if (SHOT_PAGES.has(name)) await screenshot(page, `zh-${name}`);
    check(bad.size === 0, `${name}: no English outside the dictionary and the data${bad.size ? ` — ${[...bad].map(([w, s]) => `"${w}" in "${s}"`).join('; ')}` : ''}`);
  }

  // queue: wait for a few cards
  await page.goto(`${URL}/#/`);
  await waitFor(async () => (await page.locator('[data-testid=alert-card]').count()) >= 2, 30000);
  await checkPage('queue');

  // detail of a motion alert (boxes, clip), and of a gate alert if any
  const all = (await apiFetch(page, '/api/v1/alerts?limit=1000')).data?.alerts ?? [];
  const motion = all.find((a) => a.kind === 'motion') ?? all[0];
  if (motion) {
    await page.goto(`${URL}/#/alert/${encodeURIComponent(motion.id)}`);
    await page.getByTestId('detail-view').waitFor();
    await checkPage('detail');
  }
  const gate = all.find((a) => a.kind.startsWith('gate.'));
  if (gate) {
    await page.goto(`${URL}/#/alert/${encodeURIComponent(gate.id)}`);
    await page.getByTestId('detail-view').waitFor();
    await checkPage('detail-gate');
  }

  for (const [hash, view] of [['#/live', 'live-view'], ['#/sites', 'sites-view'], ['#/evidence', 'evidence-view'], ['#/audit', 'audit-view'], ['#/report', 'report-view'], ['#/fleet', 'fleet-view']]) {
    await page.goto(`${URL}/${hash}`);
    await page.getByTestId(view).waitFor({ state: 'visible', timeout: 10000 });
    await checkPage(hash.slice(2));
  }

  await page.goto(`${URL}/admin/`);
  await page.waitForLoadState('networkidle').catch(() => {});
  await checkPage('admin');
});
