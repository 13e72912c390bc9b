/**
 * Hostile and broken input over real TCP sockets: random bytes, truncated and oversized packets, a
 * CONNECT flood, clients that do not read, and publish floods. After each, the server keeps serving.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import mqttPacket from 'mqtt-packet';
import type { Config } from '../../../src/config.ts';
import { startMqttTransport, type MqttTransport } from '../../../src/transports/mqtt/index.ts';
import { FakeCore, silentLogger } from './fake-core.ts';
import { WireClient } from './wire-client.ts';

let core: FakeCore;
let transport: MqttTransport;

before(async () => {
  core = new FakeCore();
  core.addDevice('GOOD');
  transport = await startMqttTransport({
    core: core.asCore(),
    config: {} as Config,
    logger: silentLogger,
    host: '127.0.0.1',
    port: 0,
    // Short enough that the half-open tests end soon, long enough that a busy machine sends a CONNECT in time.
    limits: { connectTimeoutMs: 2000, maxWriteBuffer: 64 * 1024 },
  });
});

after(() => transport.close());

/** A well-behaved device still connects and gets telemetry acknowledged. */
async function serverStillServes(): Promise<void> {
  const client = await WireClient.tcp(transport.port, 4);
  assert.equal((await client.connect({ username: 'GOOD' })).returnCode, 0);
  assert.equal((await client.publish('v1/devices/me/telemetry', '{"ok":1}'))!.cmd, 'puback');
  client.destroy();
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  // A bound for what should happen, not a speed check: generous, so a busy machine does not fail the suite.
  for (const deadline = Date.now() + 60_000; !condition() && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 25));
  assert.ok(condition(), what);
}

describe('MQTT transport under bad input', () => {
  it('closes connections that send random bytes', async () => {
    for (let i = 0; i < 20; i++) {
      const client = await WireClient.tcp(transport.port);
      client.raw(randomBytes(1 + ((i * 97) % 2000)));
      await client.waitClosed();
    }
    await serverStillServes();
  });

  it('closes a connection that stops in the middle of a packet (truncated CONNECT, half-open)', async () => {
    const client = await WireClient.tcp(transport.port);
    const connect = mqttPacket.generate({ cmd: 'connect', protocolVersion: 4, protocolId: 'MQTT', clientId: 'c', clean: true, keepalive: 0, username: 'GOOD' });
    client.raw(connect.subarray(0, connect.length - 3));
    await client.waitClosed();
    await serverStillServes();
  });

  it('closes a connection announcing a packet larger than the maximum before receiving it', async () => {
    const client = await WireClient.tcp(transport.port);
    await client.connect({ username: 'GOOD' });
    client.raw(Buffer.concat([Buffer.from([0x30, 0x80, 0x80, 0x80, 0x01]), Buffer.alloc(1000)])); // 2 MB PUBLISH, 1 KB sent
    await client.waitClosed();
    await serverStillServes();
  });

  it('survives a CONNECT flood of 300 bad logins and returns to zero sessions', async () => {
    // Each client sends its CONNECT as soon as it is connected (not after all 300 are), so none waits past the
    // connect timeout on a busy machine.
    const clients: WireClient[] = [];
    const codes = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const client = await WireClient.tcp(transport.port);
        clients.push(client);
        return client.connect({ clientId: `flood-${i}`, username: `bad-${i}` });
      }),
    );
    assert.ok(codes.every((p) => (p as { returnCode?: number }).returnCode === 5));
    await Promise.all(clients.map((c) => c.waitClosed()));
    await serverStillServes();
    await waitFor(() => transport.sessionCount() === 0, 'all flood connections released');
  });

  it('disconnects a client that does not read while the server pushes to it', async () => {
    const slow = net.connect(transport.port, '127.0.0.1');
    await new Promise((resolve) => slow.once('connect', resolve));
    const client = new WireClient(slow, 4);
    await client.connect({ username: 'GOOD', clientId: 'slow' });
    await client.subscribe([['v1/devices/me/attributes', 0]]);
    slow.pause(); // stop reading: the kernel buffers fill, then the server's write queue grows
    const big = { blob: 'x'.repeat(32 * 1024) };
    for (let i = 0; i < 5000 && !client.closed; i++) {
      core.pushAttributes('id-GOOD', big);
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    slow.resume();
    await client.waitClosed();
    await serverStillServes();
  });

  it('stops reading from a client that floods PUBLISH while commits are slow (bounded work)', async () => {
    let release!: () => void;
    core.commitGate = new Promise((resolve) => (release = resolve));
    const before = core.telemetry.length;
    let started = 0;
    const client = await WireClient.tcp(transport.port, 4);
    await client.connect({ username: 'GOOD', clientId: 'flooder' });
    const packet = mqttPacket.generate({ cmd: 'publish', topic: 'v1/devices/me/telemetry', payload: '{"n":1}', qos: 1, messageId: 1, retain: false, dup: false });
    const burst = Buffer.concat(Array.from({ length: 20_000 }, () => packet));
    client.raw(burst);
    await new Promise((r) => setTimeout(r, 200));
    started = core.telemetryStarted;
    // Reading paused after maxInflight (100) unfinished PUBLISH packets, plus at most one read chunk.
    assert.ok(started < 100 + 65536 / packet.length, `${started} publishes started while commits were held`);
    release();
    core.commitGate = undefined;
    await waitFor(() => core.telemetry.length - before === 20_000, 'every publish committed after release');
    client.destroy();
    await serverStillServes();
  });
});
