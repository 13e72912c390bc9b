/**
 * Fuzz target: the MQTT packet state machine (src/transports/mqtt/connection.ts) over the in-memory duplex the MQTT
 * tests use, on a real core. Each input is one session: a CONNECT (valid, mutated or absent) followed by random and
 * mutated packets of every type, written in random chunks. Invariants: no uncaught exception or unhandled rejection,
 * every connection ends closed (bounded memory), and a valid device session still gets PUBACK 0 afterwards.
 */
import mqtt, { type Packet } from 'mqtt-packet';
import { DEFAULT_TENANT_ID } from '../../src/core/model.ts';
import { DEFAULT_MQTT_LIMITS, MqttConnection, type TransportContext } from '../../src/transports/mqtt/index.ts';
import { createTestCore, silentLogger } from '../support/core.ts';
import { TEST_ACTOR } from '../support/harness.ts';
import { duplexPair, WireClient } from '../transports/mqtt/wire-client.ts';
import { CrashWatch } from './crash-watch.ts';
import { JSON_SEEDS } from './parsers.ts';
import { heapMb, type FuzzOptions, type FuzzReport } from './report.ts';
import { jsonInput, mutateMany, Rng } from './rng.ts';

const TOPICS = ['v1/devices/me/telemetry', 'v1/devices/me/attributes', 'v1/devices/me/attributes/request/1', 'v1/devices/me/rpc/request/7', 'v1/devices/me/rpc/response/3', '/provision/request', '/provision', 'v2/t', '', '#', 'v1/devices/me/attributes/response/+'];

function randomPacket(rng: Rng, version: 3 | 4 | 5, token: string): Record<string, unknown> {
  const messageId = 1 + rng.int(65535);
  const v5props = version === 5 && rng.chance(0.3) ? { properties: { topicAlias: rng.int(20), payloadFormatIndicator: rng.chance(0.5), userProperties: { a: 'b' } } } : {};
  switch (rng.int(10)) {
    case 0:
    case 1:
    case 2:
      return { cmd: 'publish', topic: rng.chance(0.5) ? rng.pick(TOPICS.slice(0, 2)) : rng.pick(TOPICS), payload: jsonInput(rng, JSON_SEEDS), qos: rng.int(3), messageId, retain: rng.chance(0.1), dup: rng.chance(0.1), ...v5props };
    case 3:
      return { cmd: 'subscribe', messageId, subscriptions: Array.from({ length: rng.int(3) }, () => ({ topic: rng.pick(TOPICS), qos: rng.int(3) })) };
    case 4:
      return { cmd: 'unsubscribe', messageId, unsubscriptions: Array.from({ length: rng.int(3) }, () => rng.pick(TOPICS)) };
    case 5:
      return { cmd: rng.pick(['puback', 'pubrec', 'pubrel', 'pubcomp']), messageId };
    case 6:
      return { cmd: 'pingreq' };
    case 7:
      return connectPacket(rng, version, token);
    case 8:
      return { cmd: 'disconnect', ...(version === 5 ? { reasonCode: rng.pick([0, 4, 0x80]) } : {}) };
    default:
      return { cmd: version === 5 ? 'auth' : 'pingresp', reasonCode: 0 };
  }
}

function connectPacket(rng: Rng, version: 3 | 4 | 5, token: string): Record<string, unknown> {
  const username = rng.pick([token, 'provision', 'wrong', undefined, '']);
  return {
    cmd: 'connect',
    protocolVersion: version,
    protocolId: version === 3 ? 'MQIsdp' : 'MQTT',
    clientId: rng.pick(['c1', '', 'provision', 'x'.repeat(100)]),
    clean: rng.chance(0.8),
    keepalive: rng.pick([0, 1, 60, 65535]),
    ...(username !== undefined ? { username } : {}),
    ...(rng.chance(0.3) ? { password: Buffer.from('pw') } : {}),
    ...(version === 5 && rng.chance(0.5) ? { properties: { maximumPacketSize: rng.pick([1, 20, 100, 65536]), receiveMaximum: 1 + rng.int(10) } } : {}),
  };
}

function encode(packet: Record<string, unknown>, version: 3 | 4 | 5): Buffer {
  try {
    return mqtt.generate(packet as unknown as Packet, { protocolVersion: version });
  } catch {
    return Buffer.alloc(0); // the generator refused a combination; the mutations cover malformed bytes
  }
}

/** The bytes of one fuzz session. */
function sessionBytes(rng: Rng, token: string): Buffer[] {
  const version = rng.pick([3, 4, 5] as const);
  const packets: Buffer[] = [];
  const style = rng.int(10);
  if (style < 6) packets.push(encode(connectPacket(rng, version, token), version));
  else if (style < 8) packets.push(mutateMany(rng, encode(connectPacket(rng, version, token), version), 1 + rng.int(3)));
  for (let i = rng.int(12); i > 0; i--) {
    const bytes = encode(randomPacket(rng, version, token), version);
    packets.push(rng.chance(0.25) ? mutateMany(rng, bytes, 1 + rng.int(3)) : bytes);
  }
  const all = Buffer.concat(packets);
  // Random chunking: packets split across writes and several packets per write.
  const chunks: Buffer[] = [];
  for (let at = 0; at < all.length; ) {
    const n = 1 + rng.int(rng.chance(0.5) ? 8 : 512);
    chunks.push(all.subarray(at, at + n));
    at += n;
  }
  return chunks;
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Runs `inputs` sessions; checks a valid session every `checkEvery` sessions and at the end. */
export async function fuzzMqtt(opts: FuzzOptions & { checkEvery?: number }): Promise<FuzzReport> {
  const rng = new Rng(opts.seed);
  const t = await createTestCore();
  const profile = await t.core.profiles.save(DEFAULT_TENANT_ID, { name: 'fuzz', provisionType: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceKey: 'k', profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 's' } } }, TEST_ACTOR);
  await t.core.devices.save(DEFAULT_TENANT_ID, { name: 'fuzz-device', deviceProfileId: profile.id }, TEST_ACTOR, 'fuzz-token');
  const ctx: TransportContext = { core: t.core, logger: silentLogger, limits: { ...DEFAULT_MQTT_LIMITS, provisionSessionTtlMs: 50, connectTimeoutMs: 200, disconnectTimeoutMs: 50 } };
  const open = new Set<MqttConnection>();
  const watch = new CrashWatch('mqtt');
  const heapBefore = heapMb();
  let units = 0;
  let checks = 0;
  let checksPassed = 0;

  const connection = (address: string) => {
    const [server, client] = duplexPair();
    const conn = new MqttConnection(server, ctx, address);
    open.add(conn);
    conn.onClose = () => open.delete(conn);
    return { conn, client };
  };

  const check = async () => {
    checks++;
    t.core.throttle.clear(); // fuzz CONNECTs fail on purpose; the check must not be throttled for them
    const { client: end } = connection('127.0.0.2');
    const client = new WireClient(end, 4);
    try {
      const connack = await client.connect({ username: 'fuzz-token', clientId: `check-${checks}` });
      const puback = await client.publish('v1/devices/me/telemetry', `{"check":${checks}}`, 1, 1);
      if (connack.returnCode === 0 && puback?.cmd === 'puback') checksPassed++;
      else watch.record('invariant', new Error(`valid session failed: connack ${connack.returnCode}`));
    } catch (err) {
      watch.record('invariant', err);
    } finally {
      client.destroy();
    }
  };

  try {
    for (let i = 0; i < opts.inputs; i++) {
      const chunks = sessionBytes(rng, 'fuzz-token');
      const { client } = connection(`10.9.${(i >> 8) & 255}.${i & 255}`);
      client.on('data', () => {}); // read whatever the server answers
      client.on('error', () => {});
      for (const chunk of chunks) {
        watch.current = chunk;
        try {
          client.write(chunk);
        } catch (err) {
          watch.record('thrown', err);
        }
        units++;
        if (rng.chance(0.2)) await turn();
      }
      for (let k = rng.int(4); k > 0; k--) await turn(); // let core calls finish, or not
      client.destroy();
      if (opts.checkEvery && i % opts.checkEvery === opts.checkEvery - 1) await check();
    }
    await check();
    for (let k = 0; k < 50 && open.size > 0; k++) await new Promise((r) => setTimeout(r, 20));
    if (open.size > 0) watch.record('invariant', new Error(`${open.size} connections still open after every client went away`));
  } finally {
    watch.disarm();
    await t.close();
  }
  return { target: 'mqtt', seed: opts.seed, inputs: opts.inputs, units, crashes: watch.crashes, checks, checksPassed, heapGrowthMb: heapMb() - heapBefore };
}
