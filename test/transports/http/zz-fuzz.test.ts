import { test } from 'node:test';
import { mutateMany, Rng } from '../../fuzz/rng.ts';
import { normalized, rawPost, runScript, type Step } from './front-support.ts';
import { createDevice, startTestServer } from './http-support.ts';
const T = 'fz-a';
const LIMITS = { httpKeepAliveTimeoutMs: 1000, httpHeadersTimeoutMs: 3000, httpRequestTimeoutMs: 4000, httpMaxPayload: 4096 };
const tel = (i: number) => rawPost(`/api/v1/${T}/telemetry`, `{"ts":${i},"values":{"k${i}":${i}}}`, i % 5 === 0 ? 'Content-Type: application/json\r\nConnection: close\r\n' : i % 7 === 0 ? 'content-type:text/plain\r\nX-Z:  \t a\r\n' : 'Content-Type: application/json\r\n');
const prov = (i: number) => rawPost('/api/v1/provision', `{"provisionDeviceKey":"k${i}","provisionDeviceSecret":"s","deviceName":"d${i}"}`);
test('fuzz', async () => {
  const [front, plain] = await Promise.all([startTestServer(LIMITS), startTestServer({ ...LIMITS, httpSocketFront: 'off' })]);
  for (const s of [front, plain]) await createDevice(s, T, undefined, T);
  const rng = new Rng(Number(process.env.SEED ?? 23));
  const all: [string, Step[]][] = [];
  for (let n = 0; n < Number(process.env.N ?? 1000); n++) {
    const src = Buffer.from(tel(n) + (n % 2 ? tel(n + 5000) : prov(n)) + tel(n + 9000), 'latin1');
    const m = mutateMany(rng, src, 1 + rng.int(4), Buffer.from(`GET /api/v1/${T}/attributes HTTP/1.1\r\nHost: x\r\n\r\n` + tel(n + 7000), 'latin1'));
    const cut = rng.int(m.length);
    all.push([`#${n}`, n % 3 ? [m] : [m.subarray(0, cut), m.subarray(cut)]]);
  }
  const bad: string[] = [];
  for (let i = 0; i < all.length; i += 50) {
    await Promise.all(all.slice(i, i + 50).map(async ([name, steps]) => {
      const [a, b] = await Promise.all([runScript(front.ports.http, steps), runScript(plain.ports.http, steps)]);
      if (normalized(a) !== normalized(b)) bad.push(`${name} ${JSON.stringify(Buffer.concat(steps.map((s) => Buffer.from(s as string, 'latin1'))).toString('latin1')).slice(0, 400)}\n F ${JSON.stringify(a).slice(0, 300)}\n N ${JSON.stringify(b).slice(0, 300)}`);
    }));
  }
  console.log('MISMATCHES', bad.length);
  for (const b of bad.slice(0, 8)) console.log(b);
  await Promise.all([front.close(), plain.close()]);
});
