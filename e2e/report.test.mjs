// The shift report page (#/report; needs GET /api/v1/reports/shift): a
// supervisor picks a site and a range (the last 12 h by default), the
// figures match the API's, the CSV downloads, and the print stylesheet
// leaves only the report on the page.
import { URL, run, login, newPage, check, apiFetch, screenshot } from './lib.mjs';
import { readFileSync } from 'node:fs';

await run(async (browser) => {
  const page = await newPage(browser);
  await login(page, 'supervisor');
  await page.getByTestId('nav-report').click();
  await page.getByTestId('report-view').waitFor({ state: 'visible' });
  const [from, to] = await Promise.all([page.getByTestId('report-from').inputValue(), page.getByTestId('report-to').inputValue()]);
  const hours = (Date.parse(`${to}Z`) - Date.parse(`${from}Z`)) / 3600e3;
  check(Math.abs(hours - 12) < 0.02, `the range defaults to the last 12 h (${from} → ${to})`);
  await page.getByTestId('report-figures').waitFor({ timeout: 15000 });
  const site = await page.getByTestId('report-site').inputValue();
  const csvHref = await page.getByTestId('report-csv').getAttribute('href');
  const q = new URLSearchParams(csvHref.split('?')[1]);
  q.delete('format');
  const api = (await apiFetch(page, `/api/v1/reports/shift?${q}`)).data;
  check(api && api.by_severity, `the report API answers for ${site}`);
  const red = await page.getByTestId('report-red').locator('strong').textContent();
  check(Number(red) === Number(api.by_severity.red ?? 0), `red alerts: ${red} on the page, ${api.by_severity.red} from the API`);
  const unresolved = await page.getByTestId('report-unresolved').locator('strong').textContent();
  check(Number(unresolved) === Number(api.unresolved ?? 0), `still open: ${unresolved}`);
  check(await page.locator('[data-testid=report-total]').count() === (api.totals ?? []).length, 'one row per kind and colour');
  await screenshot(page, 'report');

  const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('report-csv').click()]);
  const csv = readFileSync(await dl.path(), 'utf8');
  check(csv.split('\n').filter(Boolean).length >= 1 && csv.includes(','), `the CSV downloads (${csv.length} bytes)`);

  await page.emulateMedia({ media: 'print' });
  check(await page.locator('header').isHidden() && await page.getByTestId('report-form').isHidden(), 'print: no header, no form');
  check(await page.getByTestId('report-figures').isVisible(), 'print: the figures');
  await page.emulateMedia({ media: 'screen' });

  const guard = await newPage(browser);
  await login(guard, 'guard');
  check(await guard.getByTestId('nav-report').isVisible(), 'a guard has the report too');
  const pol = await newPage(browser);
  await login(pol, 'police_liaison');
  check(await pol.getByTestId('nav-report').isHidden(), 'a police liaison has no report link');
  await pol.goto(`${URL}/#/report`);
  check(await pol.getByTestId('report-view').isHidden(), 'nor the page');
});
