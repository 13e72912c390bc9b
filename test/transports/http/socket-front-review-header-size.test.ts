/**
 * Review of the socket front (src/transports/http/front-parser.ts): with node's header size limit lowered
 * (`--max-http-header-size`, also through NODE_OPTIONS), a head the front would read but node:http finds too large
 * gets node:http's 431 with the front on too. The app runs in a child process started with the lowered limit; the
 * same head is sent with the front on and off.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { normalized, rawPost, runScript } from './front-support.ts';

const APP = fileURLToPath(new URL('../../../src/transports/http/app.ts', import.meta.url));
const LEAN = fileURLToPath(new URL('../../../src/transports/http/lean-route.ts', import.meta.url));
const LOG = fileURLToPath(new URL('../../../src/log.ts', import.meta.url));

/** A child process serving `POST /lean` (front on or off) under a 4 KiB header limit; resolves its port. */
async function child(socketFront: boolean) {
  const script = `
    import { Writable } from 'node:stream';
    const { createHttpApp } = await import(${JSON.stringify(APP)});
    const { installLeanRoute } = await import(${JSON.stringify(LEAN)});
    const { createLogger } = await import(${JSON.stringify(LOG)});
    const logger = createLogger('warn', new Writable({ write: (_c, _e, cb) => cb() }));
    const app = createHttpApp({ logger, bodyLimit: 1024, limits: { keepAliveTimeoutMs: 1000 }, socketFront: ${socketFront} });
    installLeanRoute(app, 1024, { name: 'lean', idPrefix: 'l', match: (u) => (u === '/lean' ? true : undefined), async serve() { return { status: 200, body: '' }; } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    process.stdout.write(String(app.server.address().port) + '\\n');
  `;
  const proc = spawn(process.execPath, ['--max-http-header-size=4096', '--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.setEncoding('latin1');
  proc.stdout.on('data', (d: string) => (out += d));
  while (!out.includes('\n')) await Promise.race([once(proc.stdout, 'data'), once(proc, 'exit').then(() => assert.fail('the child exited'))]);
  return { port: Number(out.trim()), stop: () => proc.kill() };
}

test('under a 4 KiB header limit a 6 KiB head gets node:http\'s 431 with the front on, as with it off', async () => {
  const [front, plain] = await Promise.all([child(true), child(false)]);
  try {
    const post = rawPost('/lean', '{"a":1}', `Content-Type: application/json\r\nX-Big: ${'b'.repeat(6000)}\r\n`);
    const [withFront, without] = await Promise.all([runScript(front.port, [post]), runScript(plain.port, [post])]);
    assert.match(without, /^HTTP\/1\.1 431 /);
    assert.equal(normalized(withFront), normalized(without));
  } finally {
    front.stop();
    plain.stop();
  }
});
