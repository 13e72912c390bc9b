/**
 * CONNECT, CONNACK and protocol-level rules over an in-memory duplex (spec §8.1, §5.2; MQTT 3.1.1 / 5).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqtt from 'mqtt-packet';
import { connectInMemory, FakeCore } from './fake-core.ts';
import { settle } from './wire-client.ts';

describe('MQTT CONNECT over an in-memory duplex', () => {
  it('accepts an access token as user name with CONNACK 0 on 3.1.1 and on 3.1', async () => {
    for (const version of [4, 3] as const) {
      const core = new FakeCore();
      core.addDevice('T1');
      const { client } = connectInMemory(core, version);
      const connack = await client.connect({ username: 'T1' });
      assert.equal(connack.returnCode, 0);
      assert.equal(connack.sessionPresent, false);
    }
  });

  it('sets sessionPresent to !cleanSession as ThingsBoard does (spec §8.1)', async () => {
    const core = new FakeCore();
    core.addDevice('T1');
    const { client } = connectInMemory(core, 4);
    const connack = await client.connect({ username: 'T1', clean: false });
    assert.equal(connack.sessionPresent, true);
  });

  it('advertises MQTT 5 capabilities in CONNACK', async () => {
    const core = new FakeCore();
    core.addDevice('T1');
    const { client } = connectInMemory(core, 5);
    const connack = await client.connect({ username: 'T1' });
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.properties.maximumQoS, 1);
    assert.equal(connack.properties.retainAvailable, false);
    assert.equal(connack.properties.sharedSubscriptionAvailable, false);
    assert.equal(connack.properties.maximumPacketSize, 65536);
    assert.equal(connack.properties.topicAliasMaximum, 10);
  });

  it('refuses unknown credentials with 5 on 3.1.1 and 0x86 on 5, never 4 (spec §9 K54)', async () => {
    const core = new FakeCore();
    const v3 = connectInMemory(core, 4).client;
    assert.equal((await v3.connect({ username: 'unknownAccessToken' })).returnCode, 5);
    await v3.waitClosed();
    const v5 = connectInMemory(core, 5).client;
    assert.equal((await v5.connect({ username: 'unknownAccessToken' })).reasonCode, 0x86);
    // 0x86 is not a valid DISCONNECT reason, so none follows (deliberate; ThingsBoard sends one).
    assert.deepEqual(await v5.waitClosed(), []);
  });

  it('refuses a bare unknown client id with 2 on 3.1.1 and 0x85 on 5 (spec §8.1)', async () => {
    const core = new FakeCore();
    const v3 = connectInMemory(core, 4).client;
    assert.equal((await v3.connect({ clientId: 'nobody' })).returnCode, 2);
    const v5 = connectInMemory(core, 5).client;
    assert.equal((await v5.connect({ clientId: 'nobody' })).reasonCode, 0x85);
  });

  it('maps a core failure at connect to server unavailable (3 / 0x88)', async () => {
    const core = new FakeCore();
    core.authGate = Promise.reject(new Error('database down'));
    core.authGate.catch(() => {});
    assert.equal((await connectInMemory(core, 4).client.connect({ username: 'x' })).returnCode, 3);
    const v5 = connectInMemory(core, 5).client;
    assert.equal((await v5.connect({ username: 'x' })).reasonCode, 0x88);
    assert.equal((await v5.next('disconnect')).reasonCode, 0x89); // spec §8.1
  });

  it('refuses an empty client id with cleanSession=0 on 3.1.1 [MQTT-3.1.3-8]', async () => {
    const core = new FakeCore();
    core.addDevice('T1');
    const { client } = connectInMemory(core, 4);
    const packet = mqtt.generate({ cmd: 'connect', protocolVersion: 4, protocolId: 'MQTT', clientId: '', clean: true, keepalive: 0, username: 'T1' });
    packet[9] &= ~0x02; // clear the cleanSession flag, which mqtt-packet refuses to generate
    client.raw(packet);
    assert.equal((await client.next('connack')).returnCode, 2);
  });

  it('assigns a client id to an MQTT 5 client that sent an empty one', async () => {
    const core = new FakeCore();
    core.addDevice('T1');
    const { client } = connectInMemory(core, 5);
    const connack = await client.connect({ clientId: '', username: 'T1' });
    assert.equal(typeof connack.properties.assignedClientIdentifier, 'string');
  });

  it('closes a connection whose first packet is not CONNECT [MQTT-3.1.0-1]', async () => {
    const { client } = connectInMemory(new FakeCore(), 4);
    client.send({ cmd: 'pingreq' });
    assert.deepEqual(await client.waitClosed(), []);
  });

  it('closes on a second CONNECT, with DISCONNECT 0x82 on 5 [MQTT-3.1.0-2]', async () => {
    const core = new FakeCore();
    core.addDevice('T1');
    const { client } = connectInMemory(core, 5);
    await client.connect({ username: 'T1' });
    client.send({ cmd: 'connect', protocolVersion: 5, protocolId: 'MQTT', clientId: 'again', clean: true, keepalive: 0 });
    assert.equal((await client.next('disconnect')).reasonCode, 0x82);
    await client.waitClosed();
  });

  it('answers an unsupported protocol version with CONNACK 1 [MQTT-3.1.2-2]', async () => {
    const { client } = connectInMemory(new FakeCore(), 4);
    const packet = mqtt.generate({ cmd: 'connect', protocolVersion: 4, protocolId: 'MQTT', clientId: 'c', clean: true, keepalive: 0 });
    packet[8] = 6; // protocol level byte
    client.raw(packet);
    assert.equal((await client.next('connack')).returnCode, 1);
    await client.waitClosed();
  });

  it('queues packets sent before CONNACK and serves them after it', async () => {
    const core = new FakeCore();
    core.addDevice('T1');
    let open!: () => void;
    core.authGate = new Promise((resolve) => (open = resolve));
    const { client } = connectInMemory(core, 4);
    client.send({ cmd: 'connect', protocolVersion: 4, protocolId: 'MQTT', clientId: 'c', clean: true, keepalive: 0, username: 'T1' });
    client.send({ cmd: 'publish', topic: 'v1/devices/me/telemetry', payload: '{"a":1}', qos: 1, messageId: 7, retain: false, dup: false });
    client.send({ cmd: 'pingreq' });
    await settle();
    assert.equal(client.received.length, 0);
    open();
    assert.equal((await client.next('connack')).returnCode, 0);
    assert.equal((await client.next('puback')).messageId, 7);
    await client.next('pingresp');
    assert.equal(core.telemetry.length, 1);
  });

  it('closes when more than 100 packets wait for CONNACK (spec §8.1)', async () => {
    const core = new FakeCore();
    core.authGate = new Promise(() => {});
    const { client } = connectInMemory(core, 4);
    client.send({ cmd: 'connect', protocolVersion: 4, protocolId: 'MQTT', clientId: 'c', clean: true, keepalive: 0, username: 'T1' });
    for (let i = 0; i < 101; i++) client.send({ cmd: 'pingreq' });
    await client.waitClosed();
  });

  it('answers PINGREQ and closes on DISCONNECT', async () => {
    const core = new FakeCore();
    core.addDevice('T1');
    const { client, conn } = connectInMemory(core, 4);
    await client.connect({ username: 'T1' });
    client.send({ cmd: 'pingreq' });
    await client.next('pingresp');
    client.send({ cmd: 'disconnect' });
    await client.waitClosed();
    assert.equal(conn.closed, true);
    assert.equal(core.sessions[0].closed, true);
  });

  it('closes after 1.5 x keepalive of silence, with DISCONNECT 0x8D on 5 [MQTT-3.1.2-24]', async () => {
    const core = new FakeCore();
    core.addDevice('T1');
    const { client } = connectInMemory(core, 5);
    await client.connect({ username: 'T1', keepalive: 1 });
    assert.equal((await client.next('disconnect')).reasonCode, 0x8d);
    await client.waitClosed();
  });

  it('keeps a client that talks within 1.5 x keepalive open and closes it only after 1.5 x keepalive of silence (shared sweep)', async () => {
    const core = new FakeCore();
    core.addDevice('T1');
    const { client, conn } = connectInMemory(core, 4);
    await client.connect({ username: 'T1', keepalive: 1 });
    // Traffic every 0.5 s for 2.5 s: past 1.5 x keepalive since CONNECT, so only the pings keep the connection open.
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 500));
      client.send({ cmd: 'pingreq' });
      await client.next('pingresp');
    }
    const lastPacket = Date.now();
    await client.waitClosed();
    // [MQTT-3.1.2-24]: never before 1.5 x keepalive of silence (late is allowed: the sweep runs every 250 ms).
    assert.ok(Date.now() - lastPacket >= 1500, `closed after ${Date.now() - lastPacket} ms of silence`);
    assert.equal(conn.closed, true);
    assert.equal(core.sessions[0].closed, true);
  });

  it('closes a connection that never sends CONNECT (half-open)', async () => {
    const { client } = connectInMemory(new FakeCore(), 4, { connectTimeoutMs: 50 });
    await client.waitClosed();
  });

  it('opens a provision session for user name or client id `provision` without a lookup (spec §5.2)', async () => {
    const core = new FakeCore();
    assert.equal((await connectInMemory(core, 4).client.connect({ username: 'provision' })).returnCode, 0);
    assert.equal((await connectInMemory(core, 5).client.connect({ clientId: 'provision', username: 'whoever', password: 'ignored' })).reasonCode, 0);
    assert.equal(core.authCalls, 0);
  });
});
