/**
 * The native memory releaser (src/native-memory.ts, issue 17 item 5): glibc's malloc_trim, reached through SQLite's
 * extension loader, gives freed malloc pages back to the OS; the releaser trims once after a burst of connection events
 * has gone quiet, never for a small one; the MQTT transport reports each accepted and each closed connection to it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Config } from '../../../src/config.ts';
import { releaseFreedNativeMemory, startNativeMemoryReleaser } from '../../../src/native-memory.ts';
import { startMqttTransport } from '../../../src/transports/mqtt/index.ts';
import { FakeCore, silentLogger } from './fake-core.ts';
import { WireClient } from './wire-client.ts';

const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
const glibc = process.platform === 'linux' && Boolean((process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime);

it('gives freed malloc memory in the middle of the heap back to the OS (glibc)', { skip: glibc ? false : 'not glibc: the releaser does nothing there' }, async () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // Native buffers of mixed sizes, then all but every 16th dropped: free chunks between live ones, which glibc keeps.
  let buffers: Buffer[] = [];
  for (let i = 0; i < 100_000; i++) buffers.push(Buffer.allocUnsafeSlow(300 + (i % 5) * 700).fill(1));
  buffers = buffers.filter((_, i) => i % 16 === 0);
  let dropped = 0;
  for (let attempt = 0; attempt < 50 && dropped < 20 * 1048576; attempt++) {
    gc();
    await new Promise((r) => setTimeout(r, 100)); // V8 frees dead ArrayBuffers' memory on a background thread
    const before = rss();
    const result = releaseFreedNativeMemory();
    assert.ok(result, 'malloc_trim is reachable on glibc');
    dropped = Math.max(dropped, before - rss());
  }
  assert.ok(dropped >= 20 * 1048576, `RSS dropped by ${(dropped / 1048576).toFixed(1)} MB (~100 MB was freed)`);
  assert.equal(buffers.length, 6250);
});

it('trims once after a burst of connection events has gone quiet, and not for a small one', async () => {
  const trims: object[] = [];
  const releaser = startNativeMemoryReleaser({ debug: (obj) => trims.push(obj) }, { minChurn: 5, quietMs: 40, checkMs: 20 });
  try {
    for (let i = 0; i < 4; i++) releaser.noteChurn();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(trims.length, 0, 'four events are below the burst size');
    for (let i = 0; i < 10; i++) releaser.noteChurn();
    assert.equal(trims.length, 0, 'not before the quiet time');
    for (let i = 0; i < 500 && trims.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    if (glibc) {
      assert.equal(trims.length, 1);
      assert.equal((trims[0] as { connectionEvents: number }).connectionEvents, 14);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(trims.length, 1, 'one trim per burst');
    }
  } finally {
    releaser.close();
  }
});

it('the MQTT transport reports each accepted and each closed connection', async () => {
  const core = new FakeCore();
  core.addDevice('GOOD');
  let churn = 0;
  const transport = await startMqttTransport({ core: core.asCore(), config: {} as Config, logger: silentLogger, host: '127.0.0.1', port: 0, onChurn: () => churn++ });
  try {
    const client = await WireClient.tcp(transport.port, 4);
    client.send({ cmd: 'connect', protocolVersion: 4, protocolId: 'MQTT', clientId: 'c1', clean: true, keepalive: 30, username: 'GOOD' });
    assert.equal((await client.next('connack')).returnCode, 0);
    assert.equal(churn, 1);
    client.send({ cmd: 'disconnect' });
    await client.waitClosed();
    for (let i = 0; i < 250 && churn < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(churn, 2);
  } finally {
    await transport.close();
  }
});
