/**
 * Serves the web console (built from src/ui by scripts/build-ui.mjs into dist-ui/) at `/` on the HTTP app:
 * hashed files under /assets/ with a one-year immutable cache lifetime (pre-compressed .br/.gz copies when the client
 * accepts them), and the page itself never cached, with a Content-Security-Policy that allows no inline script.
 * The console talks only to the admin API and the WebSocket API, like any script would.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** Where the build puts the console (git-ignored). */
export const CONSOLE_DIR = resolve(import.meta.dirname, '..', '..', 'dist-ui');

/** No inline script or style elements, nothing from another origin; the WebSocket API is same-origin ('self'). */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

const NOT_BUILT = 'The web console is not built. Run `npm run build:ui` (npm ci does it) and reload.\n';

/** Any fastify instance, whatever its logger and type provider. */
type AnyFastify = FastifyInstance<any, any, any, any, any>;

/** Registers GET / (the console page) and GET /assets/* (its hashed files). */
export async function registerConsole(app: AnyFastify, dir: string = CONSOLE_DIR): Promise<void> {
  const indexPath = join(dir, 'index.html');
  // Read per request while small and rare: a rebuild (npm run build:ui) shows without a restart.
  app.get('/', { schema: { hide: true } }, async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    reply.header('x-content-type-options', 'nosniff');
    if (!existsSync(indexPath)) return reply.status(503).type('text/plain; charset=utf-8').send(NOT_BUILT);
    reply.header('content-security-policy', CONSOLE_CSP);
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    return reply.type('text/html; charset=utf-8').send(readFileSync(indexPath));
  });
  await app.register(async (assets: FastifyInstance) => {
    await assets.register(fastifyStatic, {
      root: join(dir, 'assets'),
      prefix: '/assets/',
      decorateReply: false,
      index: false,
      preCompressed: true,
      immutable: true,
      maxAge: '365d',
      // A missing folder (console not built) is fine: /assets/* then answers 404.
      wildcard: true,
      schemaHide: true,
    } as Parameters<typeof fastifyStatic>[1]);
  });
}
