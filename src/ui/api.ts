/**
 * The console's only way to the server: the admin REST API with the JWT pair from /api/auth/login, refreshed before
 * it expires. A refused session (401 that a refresh cannot fix) sends the user to the login page and back afterwards.
 */

const SESSION_KEY = 'fleetgate.session';

export interface Session {
  token: string;
  refreshToken: string;
}

/** An answer other than 2xx: the API's own message (ThingsBoard error JSON `message`, or the plain-text body). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly errorCode?: number,
  ) {
    super(message);
  }
}

export function session(): Session | null {
  try {
    const raw = localStorage.getItem(SESSION_KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

function saveSession(value: Session | null): void {
  if (value) localStorage.setItem(SESSION_KEY, JSON.stringify(value));
  else localStorage.removeItem(SESSION_KEY);
  scheduleRefresh();
}

/** Seconds-since-epoch expiry of a JWT, or 0 when it cannot be read. */
export function tokenExpiry(token: string): number {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return Number(JSON.parse(atob(payload)).exp) || 0;
  } catch {
    return 0;
  }
}

let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let refreshing: Promise<boolean> | undefined;

/** Refreshes the pair a minute before the access token expires (or at 80 % of a shorter lifetime). */
function scheduleRefresh(): void {
  clearTimeout(refreshTimer);
  const current = session();
  if (!current) return;
  const exp = tokenExpiry(current.token) * 1000;
  if (!exp) return;
  const left = exp - Date.now();
  const wait = Math.max(1000, Math.min(left - 60_000, left * 0.8));
  refreshTimer = setTimeout(() => void refresh(), Math.min(wait, 2 ** 31 - 1));
}

/** Trades the refresh token for a new pair; false when the session cannot be saved. */
export function refresh(): Promise<boolean> {
  refreshing ??= (async () => {
    const current = session();
    if (!current) return false;
    try {
      const res = await fetch('/api/auth/token', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refreshToken: current.refreshToken }),
      });
      if (!res.ok) return false;
      saveSession((await res.json()) as Session);
      return true;
    } catch {
      return false;
    }
  })().finally(() => (refreshing = undefined));
  return refreshing;
}

export async function login(username: string, password: string): Promise<void> {
  const res = await fetch('/api/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (!res.ok) throw await errorOf(res);
  saveSession((await res.json()) as Session);
}

export async function logout(): Promise<void> {
  const current = session();
  saveSession(null);
  if (current) await fetch('/api/auth/logout', { method: 'POST', headers: { 'x-authorization': `Bearer ${current.token}` } }).catch(() => {});
  location.hash = '#/login';
}

/** Ends the session and goes to the login page, which comes back here after logging in. */
export function sessionExpired(): void {
  saveSession(null);
  const here = location.hash.replace(/^#/, '') || '/';
  if (!here.startsWith('/login')) location.hash = `#/login?next=${encodeURIComponent(here)}&expired=1`;
}

async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { message?: string; errorCode?: number };
    if (body && typeof body.message === 'string') return new ApiError(body.message, res.status, body.errorCode);
  } catch {
    /* plain text */
  }
  return new ApiError(text || `${res.status} ${res.statusText}`, res.status);
}

export interface RequestOptions {
  method?: string;
  /** JSON-encoded unless a string (then sent as is, with `contentType`). */
  body?: unknown;
  contentType?: string;
  accept?: string;
  /** Return the body as text instead of JSON. */
  text?: boolean;
}

/** Calls the admin API as the logged-in user; JSON in and out. */
export async function api<T = unknown>(path: string, options: RequestOptions = {}): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const current = session();
    if (!current) {
      sessionExpired();
      throw new ApiError('Not logged in', 401);
    }
    const headers: Record<string, string> = { 'x-authorization': `Bearer ${current.token}` };
    let body: BodyInit | undefined;
    if (options.body !== undefined) {
      const raw = typeof options.body === 'string';
      headers['content-type'] = options.contentType ?? (raw ? 'text/plain' : 'application/json');
      body = raw ? (options.body as string) : JSON.stringify(options.body);
    }
    if (options.accept) headers.accept = options.accept;
    const res = await fetch(path, { method: options.method ?? (body ? 'POST' : 'GET'), headers, body });
    if (res.status === 401 && attempt === 0 && (await refresh())) continue;
    if (res.status === 401) {
      sessionExpired();
      throw await errorOf(res);
    }
    if (!res.ok) throw await errorOf(res);
    const text = await res.text();
    if (options.text) return text as T;
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

/** Query string from the defined values. */
export function query(params: Record<string, string | number | boolean | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') search.set(k, String(v));
  const s = search.toString();
  return s ? `?${s}` : '';
}

scheduleRefresh();
