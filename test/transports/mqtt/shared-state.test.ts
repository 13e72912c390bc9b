/**
 * Review of the idle-session memory work (issue 17): the state MQTT connections now share (one mqtt-packet parser in
 * decode.ts, one keep-alive watchdog in keep-alive.ts, the credentials cache in core) must still behave as if each
 * connection had its own. Real server, real TCP sockets, packets written with mqtt-packet and MQTT.js.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import mqttPacket from 'mqtt-packet';
import { keepAliveWheel } from '../../../src/transports/mqtt/keep-alive.ts';
import { createDevice, mqttjs, startTestServer, TEST_ACTOR, TENANT, type TestServer } from './e2e-support.ts';
import { settle, WireClient } from './wire-client.ts';

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('MQTT connections sharing a parser, a keep-alive watchdog and a credentials cache', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ logLevel: 'warn' });
  });
  after(() => server.close());

  test('a packet split across segments survives another connection\'s malformed packet in between', async () => {
    const a = await createDevice(server, 'split-a');
    const b = await createDevice(server, 'split-b');
    const c = await createDevice(server, 'split-c');
    const ca = await WireClient.tcp(server.mqttPort, 5);
    const cb = await WireClient.tcp(server.mqttPort, 4);
    const cc = await WireClient.tcp(server.mqttPort, 5);
    assert.equal((await ca.connect({ clientId: 'a', username: a.token })).reasonCode, 0);
    assert.equal((await cb.connect({ clientId: 'b', username: b.token })).returnCode, 0);
    assert.equal((await cc.connect({ clientId: 'c', username: c.token })).reasonCode, 0);
    const subscribe = mqttPacket.generate(
      { cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: 'v1/devices/me/attributes', qos: 1 }], properties: { userProperties: { k: 'v' } } } as never,
      { protocolVersion: 5 },
    );
    ca.raw(subscribe.subarray(0, 5));
    await settle();
    cb.raw(Buffer.from([0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x03])); // SUBSCRIBE with QoS 3: malformed
    await cb.waitClosed();
    cc.send({ cmd: 'subscribe', messageId: 9, subscriptions: [{ topic: 'v1/devices/me/rpc/request/+', qos: 1 }], properties: { subscriptionIdentifier: 3 } });
    const subackC = await cc.next('suback');
    assert.equal(subackC.messageId, 9);
    // A 3.1.1 SUBSCRIBE right after 5's (no properties field): parsed with its own connection's version.
    const cd = await WireClient.tcp(server.mqttPort, 4);
    assert.equal((await cd.connect({ clientId: 'd', username: c.token })).returnCode, 0);
    cd.send({ cmd: 'subscribe', messageId: 11, subscriptions: [{ topic: 'v1/devices/me/attributes', qos: 1 }] });
    assert.deepEqual((await cd.next('suback')).granted, [1]);
    cd.stream.destroy();
    ca.raw(subscribe.subarray(5));
    const subackA = await ca.next('suback');
    assert.equal(subackA.messageId, 7);
    assert.deepEqual(subackA.granted, [1]);
    ca.stream.destroy();
    cc.stream.destroy();
  });

  test('topic aliases stay per connection', async () => {
    const a = await createDevice(server, 'alias-a');
    const b = await createDevice(server, 'alias-b');
    const ca = await WireClient.tcp(server.mqttPort, 5);
    const cb = await WireClient.tcp(server.mqttPort, 5);
    await ca.connect({ clientId: 'alias-a', username: a.token });
    await cb.connect({ clientId: 'alias-b', username: b.token });
    const ackA = await ca.publish('v1/devices/me/telemetry', '{"t":1}', 1, 1, { topicAlias: 1 });
    assert.equal(ackA?.reasonCode ?? 0, 0);
    cb.send({ cmd: 'publish', topic: '', payload: '{"t":2}', qos: 1, messageId: 1, retain: false, dup: false, properties: { topicAlias: 1 } });
    const left = await cb.waitClosed();
    assert.ok(!left.some((p) => p.cmd === 'puback' && ((p as { reasonCode?: number }).reasonCode ?? 0) < 0x80), 'B used A\'s alias');
    const again = await ca.publish('', '{"t":3}', 1, 2, { topicAlias: 1 });
    assert.equal(again?.reasonCode ?? 0, 0);
    ca.stream.destroy();
  });

  test('every close path leaves the watchdog and the session registry as before; keep-alive 0 is not watched', async () => {
    await until('earlier connections forgotten', () => keepAliveWheel.size === 0 && server.core.sessions.count() === 0);
    const { token } = await createDevice(server, 'cycles');
    for (let i = 0; i < 20; i++) {
      const clean = await WireClient.tcp(server.mqttPort, 4);
      await clean.connect({ clientId: `c${i}`, username: token, keepalive: 30 });
      clean.send({ cmd: 'disconnect' });
      const abrupt = await WireClient.tcp(server.mqttPort, 5);
      await abrupt.connect({ clientId: `d${i}`, username: token, keepalive: 30 });
      abrupt.stream.destroy();
      const silent = await WireClient.tcp(server.mqttPort, 4); // never sends CONNECT
      silent.stream.destroy();
      const refused = await WireClient.tcp(server.mqttPort, 4);
      await refused.connect({ clientId: `r${i}`, username: 'no-such-token', keepalive: 30 });
      const malformed = await WireClient.tcp(server.mqttPort, 4);
      await malformed.connect({ clientId: `m${i}`, username: token, keepalive: 30 });
      malformed.raw(Buffer.from([0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x03]));
      const oversized = await WireClient.tcp(server.mqttPort, 4);
      await oversized.connect({ clientId: `o${i}`, username: token, keepalive: 30 });
      oversized.raw(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]));
      await Promise.all([clean, abrupt, refused, malformed, oversized].map((c) => c.waitClosed().catch(() => c.stream.destroy())));
    }
    await until('watchdog entries back to 0', () => keepAliveWheel.size === 0);
    await until('sessions back to 0', () => server.core.sessions.count() === 0);
    const zero = await WireClient.tcp(server.mqttPort, 4);
    await zero.connect({ clientId: 'zero', username: token, keepalive: 0 });
    assert.equal(keepAliveWheel.size, 0, 'a keep-alive 0 connection is watched (it could be closed)');
    assert.equal(server.core.sessions.count(), 1);
    zero.stream.destroy();
    await until('sessions back to 0', () => server.core.sessions.count() === 0);
  });

  test('a silent client is closed after 1.5 x keep-alive; replaced credentials are refused at once', async () => {
    const { device, token } = await createDevice(server, 'silent');
    const silent = await WireClient.tcp(server.mqttPort, 4);
    await silent.connect({ clientId: 'silent', username: token, keepalive: 1 });
    await silent.waitClosed();
    const warm = await mqttjs(server, { username: token, clientId: 'warm' }); // the cache now holds the token
    await warm.endAsync();
    const creds = await server.core.devices.getCredentials(TENANT, device.id);
    await server.core.devices.saveCredentials(TENANT, { id: creds.id, deviceId: device.id, credentialsType: 'ACCESS_TOKEN', credentialsId: 'silent-new-token' }, TEST_ACTOR);
    const old = await WireClient.tcp(server.mqttPort, 4);
    const refused = await old.connect({ clientId: 'old', username: token });
    assert.notEqual(refused.returnCode, 0, 'the replaced token was accepted');
    const fresh = await WireClient.tcp(server.mqttPort, 4);
    assert.equal((await fresh.connect({ clientId: 'new', username: 'silent-new-token' })).returnCode, 0);
    fresh.stream.destroy();
    old.stream.destroy();
  });
});
