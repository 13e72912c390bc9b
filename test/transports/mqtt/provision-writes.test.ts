/**
 * The writes of a provision session (output.ts, connection.ts holdsOutput): a SUBSCRIBE that arrives with the
 * provisioning request has its SUBACK held until the answer, so SUBACK, the request's PUBACK and the answer leave in
 * one write, in that order; a SUBSCRIBE on its own is answered at once; PINGRESP waits with the SUBACK; a request that
 * fails still sends what was held, before the connection closes.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { connectInMemory, FakeCore } from './fake-core.ts';

const g = (p: Record<string, unknown>) => mqttPacket.generate(p as never, { protocolVersion: 4 });
const subscribe = g({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: '/provision/response', qos: 1 }] });
const request = (secret: string) =>
  g({ cmd: 'publish', topic: '/provision/request', payload: JSON.stringify({ provisionDeviceKey: 'key', provisionDeviceSecret: secret }), qos: 1, messageId: 9, retain: false, dup: false });

/** The packets in one chunk the server wrote. */
function packetsOf(chunk: Buffer): string[] {
  const out: string[] = [];
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on('packet', (p: Packet) => out.push(p.cmd));
  parser.parse(chunk);
  return out;
}

/** A provision session over an in-memory duplex, connected, recording each write the server makes from now on. */
async function provisionSession() {
  const core = new FakeCore();
  const { conn, client } = connectInMemory(core);
  await client.connect({ clientId: 'provision', username: 'provision' });
  const writes: string[][] = [];
  const write = conn.stream.write.bind(conn.stream) as (chunk: Buffer) => boolean;
  conn.stream.write = ((chunk: Buffer) => {
    writes.push(packetsOf(chunk));
    return write(chunk);
  }) as typeof conn.stream.write;
  return { conn, client, writes };
}

it('SUBSCRIBE and the request in one chunk: SUBACK, PUBACK and the answer leave in one write', async () => {
  const { client, writes } = await provisionSession();
  client.raw(Buffer.concat([subscribe, request('secret')]));
  assert.deepEqual((await client.next('suback')).granted, [1]);
  assert.equal((await client.next('puback')).messageId, 9);
  const answer = await client.next('publish');
  assert.equal(JSON.parse(String(answer.payload)).status, 'SUCCESS');
  assert.deepEqual(writes, [['suback', 'puback', 'publish']]);
});

it('a SUBSCRIBE on its own is answered at once; the PINGRESP sent with a request waits for its answer', async () => {
  const { client, writes } = await provisionSession();
  client.raw(subscribe);
  await client.next('suback');
  assert.deepEqual(writes, [['suback']]);
  client.raw(Buffer.concat([g({ cmd: 'pingreq' }), request('secret')]));
  await client.next('pingresp');
  await client.next('publish');
  assert.deepEqual(writes, [['suback'], ['pingresp', 'puback', 'publish']]);
});

it('a refused request still sends the held SUBACK and its PUBACK and answer, and the session stays open', async () => {
  const { conn, client, writes } = await provisionSession();
  client.raw(Buffer.concat([subscribe, request('wrong')]));
  await client.next('suback');
  await client.next('puback');
  const answer = await client.next('publish');
  assert.equal(JSON.parse(String(answer.payload)).status, 'NOT_FOUND');
  assert.deepEqual(writes, [['suback', 'puback', 'publish']]);
  assert.equal(conn.closed, false);
});

it('a request whose provisioning fails inside the core still sends the held SUBACK, then PUBACK 0x83 (v3: plain), then closes', async () => {
  const { conn, client, writes } = await provisionSession();
  (conn.ctx.core.provisioning as { provision: unknown }).provision = async () => {
    throw new Error('database unavailable');
  };
  client.raw(Buffer.concat([subscribe, request('secret')]));
  assert.deepEqual((await client.next('suback')).granted, [1]);
  assert.equal((await client.next('puback')).messageId, 9);
  await client.closedPromise;
  assert.equal(conn.closed, true);
  assert.deepEqual(writes, [['suback', 'puback']]);
});

it('a QoS 0 request sent with a SUBSCRIBE: SUBACK and the answer in one write, no PUBACK', async () => {
  const { client, writes } = await provisionSession();
  const qos0 = g({ cmd: 'publish', topic: '/provision/request', payload: JSON.stringify({ provisionDeviceKey: 'key', provisionDeviceSecret: 'secret' }), qos: 0, retain: false, dup: false });
  client.raw(Buffer.concat([subscribe, qos0]));
  await client.next('suback');
  const answer = await client.next('publish');
  assert.equal(JSON.parse(String(answer.payload)).status, 'SUCCESS');
  assert.deepEqual(writes, [['suback', 'publish']]);
});

it('a client that disconnects while its request is worked on gets the held SUBACK before the socket closes', async () => {
  const { conn, client, writes } = await provisionSession();
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const provision = conn.ctx.core.provisioning.provision.bind(conn.ctx.core.provisioning);
  (conn.ctx.core.provisioning as { provision: unknown }).provision = async (...args: Parameters<typeof provision>) => {
    await gate;
    return provision(...args);
  };
  client.raw(Buffer.concat([subscribe, request('secret'), g({ cmd: 'disconnect' })]));
  await client.next('suback');
  await client.closedPromise;
  release();
  assert.deepEqual(writes, [['suback']]);
});
