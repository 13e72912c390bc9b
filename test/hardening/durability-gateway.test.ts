/**
 * Durability of gateway traffic under SIGKILL (issue 14 item 4), on SQLite and on PostgreSQL: a gateway floods
 * `v1/gateway/telemetry` at QoS 1, each PUBLISH carrying several sub-devices (some named for the first time, so
 * creation runs under the kill too), and the server child process is SIGKILLed at a seeded moment in each round.
 * Afterwards every PUBACKed (sub-device, ts) is stored exactly once, every sub-device an acknowledged message named
 * exists as this gateway's, and no message is half-written: of any message, all of its devices' points are stored or
 * none (one message = one commit).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import mqtt, { type Packet } from 'mqtt-packet';
import { Rng } from '../fuzz/rng.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { startServerProcess } from '../support/process-server.ts';
import { ADMIN, adminClient, BASE, ROUND_SPAN } from './durability-support.ts';

const ROUNDS = 2;
const STABLE_SUB_DEVICES = 30;
const PER_MESSAGE = 5;
const GATEWAY_TOKEN = 'dur-gateway-token';

/** The sub-devices message `seq` of `round` names: five of the stable ones, and in its first ten a new one. */
function devicesOf(round: number, seq: number): string[] {
  const names = Array.from({ length: PER_MESSAGE }, (_, k) => `gsub-${(seq * PER_MESSAGE + k) % STABLE_SUB_DEVICES}`);
  if (seq <= 10) names.push(`gsub-r${round}-${seq}`);
  return names;
}

/** Every message sent, by its timestamp, and the timestamps whose PUBACK arrived. */
interface Sent {
  devices: Map<number, string[]>;
  acked: number[];
}

/** The gateway: QoS 1 gateway telemetry, `window` messages in flight, until the connection dies. */
function floodGateway(port: number, round: number, sent: Sent, window: number): { stop(): void; done: Promise<void> } {
  const socket = net.connect(port, '127.0.0.1');
  const parser = mqtt.parser({ protocolVersion: 4 });
  const inflight = new Map<number, number>();
  let seq = 0;
  let stopped = false;
  const send = (p: Record<string, unknown>) => socket.write(mqtt.generate(p as unknown as Packet));
  const publishNext = () => {
    if (stopped) return;
    const ts = BASE + round * ROUND_SPAN + ++seq;
    const names = devicesOf(round, seq);
    sent.devices.set(ts, names);
    const messageId = (seq % 65535) + 1;
    inflight.set(messageId, ts);
    const payload = JSON.stringify(Object.fromEntries(names.map((n) => [n, [{ ts, values: { k: ts } }]])));
    send({ cmd: 'publish', topic: 'v1/gateway/telemetry', qos: 1, messageId, retain: false, dup: false, payload });
  };
  parser.on('packet', (p: Packet) => {
    if (p.cmd === 'connack' && p.returnCode === 0) for (let i = 0; i < window; i++) publishNext();
    if (p.cmd === 'puback') {
      const ts = inflight.get(p.messageId!);
      inflight.delete(p.messageId!);
      if (ts !== undefined) sent.acked.push(ts);
      publishNext();
    }
  });
  socket.on('data', (d) => parser.parse(d));
  socket.on('connect', () => send({ cmd: 'connect', protocolVersion: 4, protocolId: 'MQTT', clientId: 'dur-gateway', clean: true, keepalive: 0, username: GATEWAY_TOKEN }));
  const done = new Promise<void>((resolve) => {
    socket.on('close', () => resolve());
    socket.on('error', () => {});
  });
  return {
    stop() {
      stopped = true;
      socket.destroy();
    },
    done,
  };
}

async function killRounds(t: TestContext, database: string, seed: number): Promise<void> {
  const env = { FLEETGATE_DATABASE: database, FLEETGATE_ADMIN_PASSWORD: ADMIN.password, FLEETGATE_LOG_LEVEL: 'warn' };
  const rng = new Rng(seed);
  let gatewayId = '';
  const sent: Sent = { devices: new Map(), acked: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const server = await startServerProcess(env);
    if (round === 0) {
      const admin = await adminClient(server);
      gatewayId = (await admin.post(`/api/device?accessToken=${GATEWAY_TOKEN}`, { name: 'Durable Gateway', additionalInfo: { gateway: true } })).id.id;
    }
    const killAfter = 100 + rng.int(500);
    const before = sent.acked.length;
    const gateway = floodGateway(server.mqttPort, round, sent, 8);
    // The kill moment: a seeded count of acknowledged messages (the wait is bounded; it only triggers the kill).
    for (let i = 0; i < 6000 && sent.acked.length - before < killAfter; i++) await new Promise((r) => setTimeout(r, 5));
    server.child.kill('SIGKILL');
    await server.exited;
    gateway.stop();
    await gateway.done;
    t.diagnostic(`round ${round}: SIGKILL after ${sent.acked.length - before} acknowledged gateway messages`);
  }

  const final = await startServerProcess(env);
  try {
    const admin = await adminClient(final);
    const page = await admin.get('/api/tenant/devices?pageSize=100000&page=0&textSearch=gsub-');
    const ids = new Map<string, string>();
    for (const d of page.data as { id: { id: string }; name: string; additionalInfo: Record<string, unknown> | null }[]) {
      assert.equal(d.additionalInfo?.lastConnectedGateway, gatewayId, `${d.name} is the gateway's sub-device`);
      ids.set(d.name, d.id.id);
    }
    // Stored timestamps per sub-device, with duplicates counted.
    const stored = new Map<string, Map<number, number>>();
    for (const [name, id] of ids) {
      const q = `keys=k&startTs=${BASE}&endTs=${BASE + 100 * ROUND_SPAN}&limit=10000000&orderBy=ASC`;
      const body = (await admin.get(`/api/plugins/telemetry/DEVICE/${id}/values/timeseries?${q}`)) as { k?: { ts: number; value: unknown }[] };
      const counts = new Map<number, number>();
      for (const p of body.k ?? []) {
        assert.equal(String(p.value), String(p.ts), `${name}: value matches its message`);
        counts.set(p.ts, (counts.get(p.ts) ?? 0) + 1);
      }
      stored.set(name, counts);
    }
    const has = (name: string, ts: number) => (stored.get(name)?.get(ts) ?? 0) > 0;
    let lost = 0;
    for (const ts of sent.acked) {
      for (const name of sent.devices.get(ts)!) {
        assert.ok(ids.has(name), `${name}, named by an acknowledged message, exists`);
        if (!has(name, ts)) lost++;
      }
    }
    assert.equal(lost, 0, 'acknowledged points lost');
    for (const [name, counts] of stored) for (const [ts, n] of counts) assert.equal(n, 1, `${name} ts ${ts} stored ${n} times`);
    let partial = 0;
    let unackedStored = 0;
    for (const [ts, names] of sent.devices) {
      const present = names.filter((n) => has(n, ts)).length;
      if (present > 0 && present < names.length) partial++;
      if (present === names.length && !sent.acked.includes(ts)) unackedStored++;
    }
    assert.equal(partial, 0, 'messages half-written');
    t.diagnostic(`acknowledged ${sent.acked.length} messages (${sent.acked.reduce((n, ts) => n + sent.devices.get(ts)!.length, 0)} points), lost 0, half-written 0; ${unackedStored} committed but unacknowledged (killed before the PUBACK)`);
    assert.ok(sent.acked.length > 0);
  } finally {
    final.child.kill('SIGTERM');
    await final.exited;
  }
}

describe('gateway traffic under SIGKILL', () => {
  it('SQLite: every PUBACKed sub-device point stored exactly once, no message half-written', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fleetgate-durability-gw-'));
    try {
      await killRounds(t, join(dir, 'fleetgate.db'), 1414);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('PostgreSQL', { skip: skipUnlessPostgres() }, () => {
    let pg: TestPostgres | undefined;
    after(() => pg?.stop());
    it('every PUBACKed sub-device point stored exactly once, no message half-written', async (t) => {
      pg = await startPostgres();
      await killRounds(t, await pg.createDatabase(), 1515);
    });
  });
});
