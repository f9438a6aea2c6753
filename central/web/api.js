// Calls to central's API with the session cookie. Every write carries the
// X-Vigil-Request header, which central requires of cookie sessions (a
// cross-site form cannot set it).
export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) { onUnauthorized = f; }

export async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-Vigil-Request'] = '1';
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  if (resp.status !== 204) {
    try { data = await resp.json(); } catch { data = null; }
  }
  if (!resp.ok) {
    if (resp.status === 401 && path !== '/api/v1/login') onUnauthorized();
    const err = new APIError(resp.status, (data && data.error) || resp.statusText);
    err.data = data;
    err.retryAfter = Number(resp.headers.get('Retry-After')) || 0;
    throw err;
  }
  return data;
}
