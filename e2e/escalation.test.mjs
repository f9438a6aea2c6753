// Escalation and repeats are marked (#18; needs central's escalated_at,
// count and follows fields): an alert central escalated carries a mark on
// its card and in its detail, and while it waits the alarm sounds its
// escalated pattern; a card with count > 1 says how many times.
import { URL, run, login, newPage, check, apiFetch, screenshot, waitFor } from './lib.mjs';

await run(async (browser) => {
  const page = await newPage(browser);
  await login(page, 'guard');
  await page.locator('[data-testid=conn-status][data-state=live]').waitFor({ timeout: 10000 });
  // The demo's armed south-gate camera raises red alerts nobody acknowledges
  // here: wait for central to escalate one.
  const esc = await waitFor(async () => {
    const open = (await apiFetch(page, '/api/v1/alerts?state=open&limit=1000')).data?.alerts ?? [];
    return open.find((a) => a.escalated_at) ?? null;
  }, 180000, 2000);
  check(esc !== null, `an escalated alert (${esc?.id}, escalated ${esc?.escalated_at})`);
  const card = page.locator(`[data-testid=alert-card][data-alert-id="${esc.id}"]`);
  await page.evaluate(() => localStorage.setItem('vigil.queue.page', '1000'));
  await page.reload();
  await card.waitFor({ timeout: 10000 });
  check(await card.getAttribute('data-escalated') === 'true', 'the card is marked escalated');
  check(await card.getByTestId('alert-escalated').isVisible(), 'with a visible Escalated badge');
  if (esc.severity === 'red' && esc.state === 'raised') {
    await page.waitForFunction(() => document.body.dataset.alarmPattern === 'escalated', null, { timeout: 10000 });
    check(true, 'the alarm sounds the escalated pattern');
  }
  await screenshot(page, 'queue-escalated');
  await page.goto(`${URL}/#/alert/${encodeURIComponent(esc.id)}`);
  await page.locator('[data-testid=detail-view][data-escalated=true]').waitFor({ timeout: 10000 });
  check((await page.getByTestId('detail-extras').textContent()).length > 0, 'the detail says when it was escalated');

  const counted = ((await apiFetch(page, '/api/v1/alerts?state=open&limit=1000')).data?.alerts ?? []).find((a) => Number(a.count) > 1);
  if (counted) {
    await page.goto(`${URL}/#/`);
    const c = page.locator(`[data-testid=alert-card][data-alert-id="${counted.id}"]`);
    await c.waitFor({ timeout: 10000 });
    check((await c.getByTestId('alert-folded').textContent()).includes(String(counted.count)), `a card shows ×${counted.count}`);
  }
  const sorted = await apiFetch(page, '/api/v1/alerts?state=open&sort=priority&limit=1000');
  check(sorted.status === 200 && (sorted.data.alerts ?? []).every((a) => a.priority !== undefined), 'central gives every alert a priority');
});
