/**
 * Browser tests of the web console: Debian's chromium driven by playwright-core (never a downloaded browser), one
 * browser per test file, a fresh profile directory, against a real server (startTestServer: real SQLite, real ports).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';
import { skipSuiteForMissingTool } from '../support/tools.ts';
import type { Config } from '../../src/config.ts';

export const CHROMIUM = '/usr/bin/chromium';
const ROOT = resolve(import.meta.dirname, '..', '..');
export const SCREENSHOTS = join(ROOT, 'docs', 'screenshots');

/** The suite's `skip` option: chromium is a Debian package (.ci/run installs it). */
export const skipWithoutChromium = (): string | false => skipSuiteForMissingTool(existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium)`);

/** Builds the console when dist-ui is missing or older than src/ui (the same check `npm start` makes). */
export function ensureConsoleBuilt(): void {
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-ui.mjs'), '--if-missing'], { stdio: 'inherit' });
}

export interface ConsoleFixture {
  server: TestServer;
  context: BrowserContext;
  page: Page;
  /** Absolute URL of a console route, e.g. url('/devices') -> http://127.0.0.1:port/#/devices. */
  url(route: string): string;
  login(): Promise<void>;
  /** Every 5xx the browser received (the console must never make the server fail); checked by close(). */
  serverErrors: string[];
  /** Saves a screenshot of the page as docs/screenshots/<name>.png. */
  shot(name: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts a server and chromium, with a page at 1280x800 (or `viewport`). With `existing`, the browser uses that
 * server (a cluster node) and close() leaves it running.
 */
export async function startConsole(overrides: Partial<Config> = {}, viewport = { width: 1280, height: 800 }, existing?: TestServer): Promise<ConsoleFixture> {
  ensureConsoleBuilt();
  const server = existing ?? (await startTestServer(overrides));
  const profileDir = mkdtempSync(join(tmpdir(), 'fleetgate-chromium-'));
  let context: BrowserContext;
  try {
    // playwright passes the fresh profile directory to chromium as --user-data-dir.
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport,
      colorScheme: 'light',
      // With TLS on, the test server has a self-signed certificate.
      ignoreHTTPSErrors: !!overrides.tlsCert,
      timeout: 60_000,
    });
  } catch (err) {
    if (!existing) await server.close();
    throw err;
  }
  context.setDefaultTimeout(30_000);
  const page = context.pages()[0] ?? (await context.newPage());
  const base = overrides.tlsCert ? server.httpUrl.replace(/^http:/, 'https:') : server.httpUrl;
  const url = (route: string) => `${base}/#${route}`;
  const serverErrors: string[] = [];
  context.on('response', (res) => {
    if (res.status() >= 500) serverErrors.push(`${res.status()} ${res.request().method()} ${res.url()}`);
  });
  return {
    server,
    context,
    serverErrors,
    page,
    url,
    async login() {
      await page.goto(url('/login'));
      await page.getByLabel('Email').fill(ADMIN_EMAIL);
      await page.getByLabel('Password').fill(ADMIN_PASSWORD);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('button', { name: 'Log out' }).waitFor();
    },
    async shot(name) {
      mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
    },
    async close() {
      await context.close().catch(() => {});
      if (!existing) await server.close();
      rmSync(profileDir, { recursive: true, force: true });
      if (serverErrors.length > 0) throw new Error(`the server answered 5xx to the console: ${serverErrors.join(', ')}`);
    },
  };
}

/** Calls the admin API as the administrator from the test (not through the browser). */
export async function adminCall<T = unknown>(server: TestServer, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const token = await server.adminToken();
  const res = await fetch(`${server.httpUrl}${path}`, {
    method,
    headers: { 'x-authorization': `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* text */
  }
  return { status: res.status, body: parsed as T };
}

export { ADMIN_EMAIL, ADMIN_PASSWORD };
