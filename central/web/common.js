// Small helpers the console's pages share (app.js, history.js).

// storedNumber is a number the user (or a test) left in localStorage
// under key, or def when there is none (or storage is off).
export function storedNumber(key, def) {
  try { return Number(localStorage.getItem(key)) || def; } catch { return def; }
}

// siteRoots is the top sites of GET /api/v1/sites, whatever its shape.
export function siteRoots(res) {
  if (!res) return [];
  if (Array.isArray(res)) return res;
  if (Array.isArray(res.sites)) return res.sites;
  if (res.township) return [res.township];
  return res.id ? [res] : [];
}
