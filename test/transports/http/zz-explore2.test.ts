import { test } from 'node:test';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/log.ts';
import { createHttpApp } from '../../../src/transports/http/app.ts';
import { normalized, runScript } from './front-support.ts';
test('x', async () => {
  for (const f of [true, false, true, false]) {
    const logger = createLogger('warn', new Writable({ write: (_c, _e, cb) => cb() }));
    const a = createHttpApp({ logger, bodyLimit: 1024, limits: { keepAliveTimeoutMs: 500 }, socketFront: f });
    await a.listen({ host: '127.0.0.1', port: 0 });
    const port = (a.server.address() as AddressInfo).port;
    const out = await runScript(port, ['POST /nope HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}POST /nope HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}GARBAGE\r\n\r\n']);
    console.log(f ? 'FRONT' : 'NODE ', JSON.stringify(normalized(out)).slice(0, 2000));
    await a.close();
  }
});
