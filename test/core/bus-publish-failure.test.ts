/**
 * One node, SQLite, the in-memory bus. A device update takes effect on this node's sessions at once and its notice goes
 * out on the bus, as before. When the publish fails (a fault injected into the bus), the saved change still answers
 * success: the failure is counted and logged (device id, never a token), and the notice, the last one per device, is
 * published again when the bus is back. After a reconnect, a node's sessions are read again from the store in batches.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import { createCore, type CoreInstance } from '../../src/core/core.ts';
import { DependencyUnavailableError } from '../../src/core/errors.ts';
import { DEFAULT_TENANT_ID, type Device } from '../../src/core/model.ts';
import { channels, type Bus, type BusHandler, type BusMessage } from '../../src/core/ports/bus.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { KyselyStore } from '../../src/store/kysely/kysely-store.ts';
import { TEST_ACTOR } from '../support/harness.ts';

/** The in-memory bus with a fault switch for publishing and a way to say "the connection is back". */
class FaultyBus implements Bus {
  failing = false;
  private readonly inner = new MemoryBus();
  private readonly listeners: ((lostAt: number | undefined) => void)[] = [];
  async publish(channel: string, message: BusMessage): Promise<void> {
    if (this.failing) throw new DependencyUnavailableError('bus', 'Redis connection lost (injected)', 'none');
    return this.inner.publish(channel, message);
  }
  subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>> {
    return this.inner.subscribe(channel, handler);
  }
  ping(): Promise<void> {
    return this.inner.ping();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  onReconnect(listener: (lostAt: number | undefined) => void): void {
    this.listeners.push(listener);
  }
  reconnect(): void {
    for (const l of this.listeners) l(Date.now());
  }
}

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`gave up waiting: ${what}`);
}

describe('device update notices on one node', () => {
  let dir: string;
  let store: KyselyStore;
  let core: CoreInstance;
  const bus = new FaultyBus();
  const heard: BusMessage[] = [];
  const warnings: string[] = [];
  const infos: string[] = [];
  const failures: string[] = [];
  let getDevicesByIdsCalls = 0;
  let concurrentReads = 0;
  let maxConcurrentReads = 0;
  /** Fault injection: while set, the next batched read returns its (already read) rows only once released. */
  let holdRead: { reached: () => void; gate: Promise<void> } | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleetgate-notices-'));
    store = await openSqliteStore(join(dir, 'test.db'), { synchronous: 'normal' });
    // Counts the batched reads of the catch-up (the real store answers them).
    const read = store.getDevicesByIds.bind(store);
    store.getDevicesByIds = async (tenantId: string, ids: string[]) => {
      getDevicesByIdsCalls++;
      maxConcurrentReads = Math.max(maxConcurrentReads, ++concurrentReads);
      try {
        const rows = await read(tenantId, ids);
        const hold = holdRead;
        holdRead = undefined;
        if (hold) {
          hold.reached();
          await hold.gate;
        }
        return rows;
      } finally {
        concurrentReads--;
      }
    };
    const logger = {
      debug() {},
      error() {},
      info: (obj: object, msg?: string) => void infos.push(`${JSON.stringify(obj)} ${msg}`),
      warn: (obj: object, msg?: string) => void warnings.push(`${JSON.stringify(obj)} ${msg}`),
    };
    core = await createCore({
      store,
      bus,
      logger,
      observer: { busPublishFailed: (kind) => void failures.push(kind) },
      settings: { batchMaxRows: 5000, batchMaxDelayMs: 0, rpcDefaultTimeout: 2000, provisionRetryAfterMs: 3000 },
    });
    await bus.subscribe(channels.credentials, (m) => void heard.push(m));
  });
  after(async () => {
    await core?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const openSession = async (token: string) => {
    const identity = (await core.auth.byAccessToken(token))!;
    assert.ok(identity, token);
    const updates: string[] = [];
    const session = core.sessions.open(identity, { onDeviceUpdated: (id) => void updates.push(id.deviceName) });
    return { session, updates, nameNow: () => core.sessionRegistry.sessionsOf(identity.deviceId)[0]?.identity.deviceName };
  };

  test('a healthy bus: the session takes the new name when the update returns, and the notice goes out', async () => {
    const device = await core.devices.save(DEFAULT_TENANT_ID, { name: 'single-before' }, TEST_ACTOR, 'single-token');
    const { nameNow, updates, session } = await openSession('single-token');
    await core.devices.save(DEFAULT_TENANT_ID, { ...device, name: 'single-after' }, TEST_ACTOR);
    assert.equal(nameNow(), 'single-after');
    // Applied here at once, and again when this node hears its own notice (both the same identity).
    assert.ok(updates.length >= 1 && updates.every((n) => n === 'single-after'), updates.join());
    await until('the notice', () => heard.some((m) => m.kind === 'device-updated' && m.deviceId === device.id));
    assert.equal((await core.auth.byAccessToken('single-token'))?.deviceName, 'single-after');
    assert.deepEqual(failures, []);
    session.close();
  });

  test('a failing publish: the update and the new token are saved and answered, and the notices go out once the bus is back', async () => {
    const device = await core.devices.save(DEFAULT_TENANT_ID, { name: 'faulty-before' }, TEST_ACTOR, 'faulty-old-token');
    const { nameNow, session } = await openSession('faulty-old-token');
    heard.length = 0;
    bus.failing = true;
    try {
      await core.devices.save(DEFAULT_TENANT_ID, { ...device, name: 'faulty-middle' }, TEST_ACTOR);
      const saved = await core.devices.save(DEFAULT_TENANT_ID, { ...device, name: 'faulty-after' }, TEST_ACTOR);
      assert.equal(saved.name, 'faulty-after');
      assert.equal(nameNow(), 'faulty-after', 'this node took the change at once');
      const creds = await core.devices.getCredentials(DEFAULT_TENANT_ID, device.id);
      await core.devices.saveCredentials(DEFAULT_TENANT_ID, { ...creds, credentialsId: 'faulty-new-token' }, TEST_ACTOR);
      assert.equal(await core.auth.byAccessToken('faulty-old-token'), undefined, 'the old token stops working on this node at once');
      assert.equal((await store.getDeviceById(device.id))?.name, 'faulty-after');
      await until('the failures to be counted', () => failures.filter((k) => k === 'device-updated').length >= 2 && failures.includes('credentials-changed'));
      assert.ok(warnings.some((w) => w.includes(device.id) && w.includes('bus-publish-failed')));
      assert.ok(!warnings.some((w) => w.includes('faulty-old-token') || w.includes('faulty-new-token')), 'no token in the log');
      assert.equal(heard.length, 0);
    } finally {
      bus.failing = false;
    }
    bus.reconnect();
    await until('the notices published again', () => heard.some((m) => m.kind === 'credentials-changed' && m.credentialsId === 'faulty-new-token'));
    await until('the device update published again', () => heard.some((m) => m.kind === 'device-updated'));
    const updates = heard.filter((m) => m.kind === 'device-updated' && m.deviceId === device.id);
    assert.deepEqual(updates.map((m) => m.kind === 'device-updated' && m.deviceName), ['faulty-after'], 'the last one per device, once');
    assert.ok(heard.some((m) => m.kind === 'credentials-changed' && m.credentialsId === 'faulty-old-token'));
    session.close();
  });

  test('after a reconnect, sessions take identities changed behind their back, read in batches one at a time', async () => {
    const count = 1200;
    const devices: Device[] = [];
    for (let i = 0; i < count; i++) devices.push(await core.devices.save(DEFAULT_TENANT_ID, { name: `batch-${i}` }, TEST_ACTOR, `batch-token-${i}`));
    const sessions: Awaited<ReturnType<typeof openSession>>[] = [];
    for (let i = 0; i < count; i++) sessions.push(await openSession(`batch-token-${i}`));
    // Changed in the store only, as if the notices were lost: every third device is renamed.
    for (let i = 0; i < count; i += 3) await store.updateDevice({ ...devices[i], name: `batch-${i}-renamed` });
    const cached = (await core.auth.byAccessToken('batch-token-0'))!;
    assert.equal(cached.deviceName, 'batch-0', 'the login cache still holds the old name');
    getDevicesByIdsCalls = 0;
    maxConcurrentReads = 0;
    bus.reconnect();
    await until('every renamed session to follow', () => sessions.every((s, i) => s.nameNow() === (i % 3 === 0 ? `batch-${i}-renamed` : `batch-${i}`)));
    assert.equal((await core.auth.byAccessToken('batch-token-0'))?.deviceName, 'batch-0-renamed', 'the login cache was dropped');
    assert.ok(getDevicesByIdsCalls <= Math.ceil(count / 500) + 1, `${getDevicesByIdsCalls} reads for ${count} devices`);
    assert.equal(maxConcurrentReads, 1, 'one read at a time');
    assert.deepEqual(sessions[1].updates, [], 'an unchanged device is left alone');
    assert.deepEqual(sessions[3].updates, ['batch-3-renamed']);
    for (const s of sessions) s.session.close();
  });

  test("after a reconnect, a gateway's sub-devices follow renames and hand-overs it missed", async () => {
    const gw = await core.devices.save(DEFAULT_TENANT_ID, { name: 'catch-up-gw', additionalInfo: { gateway: true } }, TEST_ACTOR, 'catch-up-gw-token');
    const other = await core.devices.save(DEFAULT_TENANT_ID, { name: 'catch-up-other-gw', additionalInfo: { gateway: true } }, TEST_ACTOR);
    const kept = await core.devices.save(DEFAULT_TENANT_ID, { name: 'catch-up-kept', additionalInfo: { lastConnectedGateway: gw.id } }, TEST_ACTOR);
    const renamed = await core.devices.save(DEFAULT_TENANT_ID, { name: 'catch-up-renamed', additionalInfo: { lastConnectedGateway: gw.id } }, TEST_ACTOR);
    const handed = await core.devices.save(DEFAULT_TENANT_ID, { name: 'catch-up-handed', additionalInfo: { lastConnectedGateway: gw.id } }, TEST_ACTOR);
    const session = core.gateway.open((await core.auth.byAccessToken('catch-up-gw-token'))!, { attributes() {}, rpc: async () => {} });
    try {
      for (const name of ['catch-up-kept', 'catch-up-renamed', 'catch-up-handed']) await session.connect(Buffer.from(JSON.stringify({ device: name })));
      assert.deepEqual(session.subDevices().sort(), ['catch-up-handed', 'catch-up-kept', 'catch-up-renamed']);
      // Changed in the store only, as if the notices were lost.
      await store.updateDevice({ ...renamed, name: 'catch-up-renamed-2' });
      await store.updateDevice({ ...handed, additionalInfo: { lastConnectedGateway: other.id } });
      bus.reconnect();
      await until('the sub-devices to follow', () => session.subDevices().sort().join() === 'catch-up-kept,catch-up-renamed-2');
      assert.equal(core.sessionRegistry.sessionsOf(handed.id).length, 0, 'the handed-over sub-device has no session here');
      assert.equal(core.sessionRegistry.sessionsOf(kept.id).length, 1);
    } finally {
      session.close();
    }
  });

  test('without a reconnect (only the publishing connection broke) the kept notice goes out on the retry, with the device as it is now', async () => {
    const device = await core.devices.save(DEFAULT_TENANT_ID, { name: 'retry-before' }, TEST_ACTOR);
    heard.length = 0;
    const failedBefore = failures.length;
    bus.failing = true;
    try {
      await core.devices.save(DEFAULT_TENANT_ID, { ...device, name: 'retry-here' }, TEST_ACTOR);
      await until('the failure to be counted', () => failures.length > failedBefore);
      // Meanwhile another node renamed it again, and its notice went out: the kept one must not undo that.
      await store.updateDevice({ ...device, name: 'retry-elsewhere' });
    } finally {
      bus.failing = false;
    }
    await until('the kept notice to go out on the retry', () => heard.some((m) => m.kind === 'device-updated' && m.deviceId === device.id));
    const updates = heard.filter((m) => m.kind === 'device-updated' && m.deviceId === device.id);
    assert.deepEqual(updates.map((m) => m.kind === 'device-updated' && m.deviceName), ['retry-elsewhere']);
  });

  test('after a reconnect, the sessions of a device deleted meanwhile end', async () => {
    const device = await core.devices.save(DEFAULT_TENANT_ID, { name: 'deleted-meanwhile' }, TEST_ACTOR, 'deleted-meanwhile-token');
    const identity = (await core.auth.byAccessToken('deleted-meanwhile-token'))!;
    let ended = 0;
    const session = core.sessions.open(identity, { onDeviceDeleted: () => void ended++ });
    await store.deleteDevice(DEFAULT_TENANT_ID, device.id); // its notice lost
    bus.reconnect();
    await until('the session to end', () => ended > 0);
    assert.equal(ended, 1);
    session.close();
  });

  test("a change made while a catch-up reads the device is not undone by the catch-up's older read", async () => {
    const device = await core.devices.save(DEFAULT_TENANT_ID, { name: 'race-before' }, TEST_ACTOR, 'race-token');
    const { nameNow, session } = await openSession('race-token');
    await store.updateDevice({ ...device, name: 'race-missed' }); // a lost notice: the catch-up has something to do
    let reached!: () => void;
    let release!: () => void;
    const atGate = new Promise<void>((resolve) => (reached = resolve));
    holdRead = { reached, gate: new Promise<void>((resolve) => (release = resolve)) };
    bus.reconnect();
    await atGate; // the catch-up read 'race-missed'
    // Saved on this node while its notice cannot go out: only this node's own apply says the name is newer.
    bus.failing = true;
    try {
      await core.devices.save(DEFAULT_TENANT_ID, { ...device, name: 'race-latest' }, TEST_ACTOR);
    } finally {
      bus.failing = false;
    }
    assert.equal(nameNow(), 'race-latest');
    release();
    await new Promise((r) => setTimeout(r, 100));
    await until('the catch-up to end', () => concurrentReads === 0);
    assert.equal(nameNow(), 'race-latest', 'the newer change stays');
    session.close();
  });

  test('after a reconnect, sessions whose credentials were replaced meanwhile end, unless the old ones are in a grace period', async () => {
    const replaced = await core.devices.save(DEFAULT_TENANT_ID, { name: 'replaced-meanwhile' }, TEST_ACTOR, 'replaced-old-token');
    const rotated = await core.devices.save(DEFAULT_TENANT_ID, { name: 'rotated-meanwhile' }, TEST_ACTOR, 'rotated-old-token');
    const ended: string[] = [];
    const open = async (token: string) => core.sessions.open((await core.auth.byAccessToken(token))!, { onCredentialsRevoked: () => void ended.push(token) });
    const sessions = [await open('replaced-old-token'), await open('rotated-old-token')];
    // Changed in the store only, as if the notices were lost; the rotated one keeps its old token for a while.
    const replacedCreds = (await store.getCredentialsOfDevice(replaced.id))!;
    await store.updateCredentials({ ...replacedCreds, credentialsId: 'replaced-new-token' });
    const rotatedCreds = (await store.getCredentialsOfDevice(rotated.id))!;
    await store.updateCredentials({ ...rotatedCreds, credentialsId: 'rotated-new-token' });
    await store.insertCredentialsGrace({ credentialsId: 'rotated-old-token', deviceId: rotated.id, credentialsType: 'ACCESS_TOKEN', credentialsValue: null, expiresTime: Date.now() + 3_600_000 });
    infos.length = 0;
    bus.reconnect();
    // The catch-up's last word: what it did, once it checked every device.
    await until('the catch-up to end', () => infos.some((l) => l.includes('"event":"bus-catch-up"') && l.includes('"revoked":1')));
    assert.deepEqual(ended, ['replaced-old-token']);
    for (const s of sessions) s.close();
  });
});

