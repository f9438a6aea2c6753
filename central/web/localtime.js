// The console shows times in Beijing time (Asia/Shanghai: UTC+8, no DST);
// datetime-local inputs hold that wall time and are turned back into UTC.
export const TZ_OFFSET_MS = 8 * 3600 * 1000;

const fmt = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});

// formatLocal writes a Date as "YYYY-MM-DD hh:mm:ss", Beijing time.
export function formatLocal(date) {
  const p = Object.fromEntries(fmt.formatToParts(date).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

// local is formatLocal of an ISO time; what does not parse is shown as it is.
export function local(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso ?? '');
  return formatLocal(d);
}

// toInput is a datetime-local value (Beijing wall time) for a UTC instant.
export function toInput(ms) { return new Date(ms + TZ_OFFSET_MS).toISOString().slice(0, 19); }

// fromInput is the UTC instant of a datetime-local value; null if empty or bad.
export function fromInput(v) {
  if (!v) return null;
  const ms = Date.parse(`${v.length === 16 ? `${v}:00` : v}Z`);
  return Number.isNaN(ms) ? null : new Date(ms - TZ_OFFSET_MS);
}
