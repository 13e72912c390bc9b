/**
 * The CLI's client of the admin REST API: with an API key (`--api-key` / FLEETGATE_API_KEY) it sends
 * `X-Authorization: ApiKey <value>` on every call (no password needed: scripts and CI should not hold one); else it
 * logs in with the administrator's email and password and sends `X-Authorization: Bearer <token>`. Errors become
 * CliErrors with ThingsBoard's error message.
 */
import { Option, type Command } from 'commander';
import { CliError, EXIT, usageError } from './errors.ts';

/** Where the server is and who logs in (from flags or FLEETGATE_URL / FLEETGATE_ADMIN_USERNAME / FLEETGATE_ADMIN_PASSWORD). */
export interface ConnectionOptions {
  url: string;
  username: string;
  password?: string;
  /** An API key (POST /api/apiKey); used instead of logging in. */
  apiKey?: string;
  json?: boolean;
}

/** Adds the connection options and `--json` to a command that talks to a running server. */
export function withConnection(cmd: Command): Command {
  return cmd
    .addOption(new Option('--url <url>', 'server URL').env('FLEETGATE_URL').default('http://127.0.0.1:8080'))
    .addOption(new Option('--username <email>', 'administrator login').env('FLEETGATE_ADMIN_USERNAME').default('admin@fleetgate.local'))
    .addOption(new Option('--password <password>', 'administrator password').env('FLEETGATE_ADMIN_PASSWORD'))
    .addOption(new Option('--api-key <value>', 'API key (from POST /api/apiKey), instead of a password').env('FLEETGATE_API_KEY'))
    .option('--json', 'print JSON (for scripts) instead of tables');
}

interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  /** Raw body text with its content type instead of JSON. */
  text?: { contentType: string; body: string };
  accept?: string;
}

/** An authenticated admin API session. */
export class AdminClient {
  private token: string | undefined;
  private readonly base: string;

  constructor(private readonly options: ConnectionOptions) {
    this.base = options.url.replace(/\/+$/, '');
    if (!/^https?:\/\//.test(this.base)) throw usageError(`--url must be an http:// or https:// URL, got "${options.url}"`);
  }

  private async send(method: string, path: string, opts: RequestOptions, token?: string): Promise<Response> {
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: opts.accept ?? 'application/json' };
    if (token) headers['x-authorization'] = token;
    let body: string | undefined;
    if (opts.text) {
      headers['content-type'] = opts.text.contentType;
      body = opts.text.body;
    } else if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    try {
      return await fetch(url, { method, headers, body });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach fleetgate at ${this.base}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, EXIT.API);
    }
  }

  private async failure(res: Response, what: string): Promise<CliError> {
    const text = await res.text();
    let message = text.trim() || res.statusText;
    try {
      const parsed = JSON.parse(text) as { message?: unknown };
      if (typeof parsed.message === 'string') message = parsed.message;
    } catch {
      /* not JSON */
    }
    return new CliError(`${what}: ${message} (HTTP ${res.status})`, EXIT.API);
  }

  /** The X-Authorization header value: `ApiKey <value>`, or `Bearer <jwt>` after logging in. */
  private async login(): Promise<string> {
    if (this.token) return this.token;
    if (this.options.apiKey) return (this.token = `ApiKey ${this.options.apiKey}`);
    if (!this.options.password) throw usageError('no administrator password or API key: pass --password or --api-key, or set FLEETGATE_ADMIN_PASSWORD or FLEETGATE_API_KEY');
    const res = await this.send('POST', '/api/auth/login', { body: { username: this.options.username, password: this.options.password } });
    if (res.status !== 200) throw await this.failure(res, `login as ${this.options.username} failed`);
    this.token = `Bearer ${((await res.json()) as { token: string }).token}`;
    return this.token;
  }

  /** Calls the API and returns the raw response (2xx only). */
  async raw(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const res = await this.send(method, path, opts, await this.login());
    if (res.status < 200 || res.status >= 300) throw await this.failure(res, `${method} ${path} failed`);
    return res;
  }

  /** Calls the API and parses the JSON answer (undefined for an empty body). */
  async call<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.raw(method, path, opts);
    const text = await res.text();
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }
}
