/**
 * Provisioning requests that share one transaction (issue 17): the new devices of a group go in with a few multi-row
 * statements (src/core/provisioning/new-devices.ts), and every request still gets exactly the answer it gets alone —
 * new names, a name twice in the group, a taken name, taken credentials, a generated name, a lost answer asked again,
 * a hook that grants and one that denies — on SQLite and PostgreSQL. A device whose write fails (an injected fault)
 * fails alone: the others of its group are written one by one and keep their answers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import type { ProvisionRequest, ProvisionResult } from '../../src/core/api.ts';
import { createCore, type CoreInstance } from '../../src/core/core.ts';
import { DEFAULT_TENANT_ID as T } from '../../src/core/model.ts';
import { NewDeviceWriter, type NewDevice } from '../../src/core/provisioning/new-devices.ts';
import { TransactionBatcher } from '../../src/core/transaction-batcher.ts';
import { FetchHookCaller } from '../../src/hooks/fetch-hook-caller.ts';
import { KyselyStore } from '../../src/store/kysely/kysely-store.ts';
import type { Store } from '../../src/core/ports/store.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { json, TestHook } from '../provisioning/hook-server.ts';
import { silentLogger } from '../support/core.ts';
import { TEST_ACTOR } from '../support/harness.ts';
import { skipUnlessPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HOOK_SECRET = 'group-hook-secret-0123456789';
const src = { transport: 'http' as const, address: '127.0.0.1' };
const settings = { batchMaxRows: 5000, batchMaxDelayMs: 0, rpcDefaultTimeout: 2000, provisionRetryAfterMs: 3000 };

/** Counts units handed to the batcher and the size of every bulk write (spies: both call through). */
const spy = { units: 0, bulkSizes: [] as number[] };
const originalRun = TransactionBatcher.prototype.run;
const originalWrite = NewDeviceWriter.prototype.write;
TransactionBatcher.prototype.run = function (this: TransactionBatcher, ...args: Parameters<TransactionBatcher['run']>) {
  spy.units++;
  return originalRun.apply(this, args);
} as TransactionBatcher['run'];
NewDeviceWriter.prototype.write = function (this: NewDeviceWriter, tx: Store, items: NewDevice[]) {
  spy.bulkSizes.push(items.length);
  return originalWrite.call(this, tx, items);
};

/** Fault injection: the device named `faulty` cannot be written, alone or in a group. */
let faulty: string | undefined;
const originalBulkInsert = KyselyStore.prototype.insertDevicesIfAbsent;
const originalInsert = KyselyStore.prototype.insertDevice;
KyselyStore.prototype.insertDevicesIfAbsent = function (this: KyselyStore, pairs) {
  if (pairs.some((p) => p.device.name === faulty)) return Promise.reject(new Error('injected fault'));
  return originalBulkInsert.call(this, pairs);
};
KyselyStore.prototype.insertDevice = function (this: KyselyStore, device, creds) {
  if (device.name === faulty) return Promise.reject(new Error('injected fault'));
  return originalInsert.call(this, device, creds);
};

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Setup {
  core: CoreInstance;
  store: KyselyStore;
  /** SQLite: holds the one connection, so requests queue up into one group until released. */
  hold?: () => () => Promise<void>;
}

function groupSuite(name: string, open: () => Promise<Setup & { close(): Promise<void> }>, skip?: string | false) {
  describe(`provisioning groups on ${name}`, { skip }, () => {
    let s: Setup & { close(): Promise<void> };
    let hook: TestHook;
    const keyOf = (profile: string) => ({ provisionDeviceKey: `${name}-${profile}-key`, provisionDeviceSecret: `${name}-${profile}-secret` });
    const provision = (profile: string, extra: Partial<ProvisionRequest>) => s.core.provisioning.provision({ ...keyOf(profile), ...extra }, src);

    before(async () => {
      hook = await TestHook.start(HOOK_SECRET);
      hook.respond = (call, res) =>
        String(call.body.deviceName).endsWith('-denied') ? json(res, 200, { allow: false }) : json(res, 200, { allow: true, label: 'Line 7', serverAttributes: { batch: 'B-1' } });
      s = await open();
      for (const [profile, extra] of [['plain', {}], ['hooked', { preProvisioningHook: { url: hook.url, secret: HOOK_SECRET } }]] as const) {
        const type = 'ALLOW_CREATE_NEW_DEVICES';
        const { provisionDeviceKey, provisionDeviceSecret } = keyOf(profile);
        await s.core.profiles.save(T, { name: `${name}-${profile}`, provisionType: type, provisionDeviceKey, profileData: { provisionConfiguration: { type, provisionDeviceSecret, ...extra } } }, TEST_ACTOR);
        assert.equal((await provision(profile, { deviceName: `${name}-${profile}-warm` })).status, 'SUCCESS'); // profile cached
      }
    });
    after(async () => {
      await s?.close();
      await hook?.close();
    });

    async function scenario(prefix: string, withFault: boolean) {
      const p = `${name}-${prefix}`;
      await s.core.devices.save(T, { name: `${p}-taken` }, TEST_ACTOR);
      await s.core.devices.save(T, { name: `${p}-token-owner` }, TEST_ACTOR, `${p}-used-token`);
      const earlier = await provision('plain', { deviceName: `${p}-earlier` });
      assert.equal(earlier.status, 'SUCCESS');
      const earlierDevice = (await s.store.findDeviceByName(T, `${p}-earlier`))!;
      await s.store.updateDevice({ ...earlierDevice, createdTime: earlierDevice.createdTime - 60_000 }); // its answer was lost a minute ago
      faulty = withFault ? `${p}-fault` : undefined;

      const release = s.hold?.();
      if (release) {
        const plugged = spy.units;
        void provision('plain', { deviceName: `${p}-plug` });
        await waitFor(() => spy.units > plugged, 'the first group');
        await new Promise((r) => setImmediate(r)); // its flush has begun and waits for the connection
      }
      const unitsBefore = spy.units;
      const bulkCalls = spy.bulkSizes.length;
      const requests: [string, Partial<ProvisionRequest>][] = [
        ...[1, 2, 3, 4, 5].map((i): [string, Partial<ProvisionRequest>] => ['plain', { deviceName: `${p}-new-${i}` }]),
        ['plain', { deviceName: `${p}-dup` }],
        ['plain', { deviceName: `${p}-dup` }],
        ['plain', { deviceName: `${p}-taken` }],
        ['plain', {}],
        ['plain', { deviceName: `${p}-creds`, credentialsType: 'ACCESS_TOKEN', token: `${p}-used-token` }],
        ['plain', { deviceName: `${p}-earlier` }],
        ['plain', { deviceName: `${p}-fault` }],
        ['hooked', { deviceName: `${p}-granted` }],
        ['hooked', { deviceName: `${p}-denied` }],
      ];
      const answers = requests.map(([profile, extra]) => provision(profile, extra).then((r) => r, (err: Error) => err));
      if (release) {
        await waitFor(() => spy.units - unitsBefore === requests.length - 1, 'every request to reach the batcher'); // the denied one never does
        await release();
      }
      const results = await Promise.all(answers);
      const at = (i: number) => results[i] as ProvisionResult;
      const reasonOf = (r: ProvisionResult | Error) => (r instanceof Error ? r.message : r.status === 'SUCCESS' ? 'SUCCESS' : `${r.status} ${r.reason}`);

      if (release) {
        // One group: all eleven units that create a device went to the bulk writer in one call.
        assert.ok(spy.bulkSizes.slice(bulkCalls).includes(requests.length - 1), `bulk writes ${JSON.stringify(spy.bulkSizes.slice(bulkCalls))}`);
      }
      for (let i = 0; i < 5; i++) assert.equal(reasonOf(at(i)), 'SUCCESS', `new-${i + 1}`);
      assert.deepEqual([reasonOf(at(5)), reasonOf(at(6))].sort(), ['FAILURE DEVICE_EXISTS', 'SUCCESS'], 'one name twice in the group');
      assert.equal(reasonOf(at(7)), 'FAILURE DEVICE_EXISTS', 'a taken name');
      const generated = at(8);
      assert.ok(generated.status === 'SUCCESS', 'a generated name');
      assert.equal(generated.deviceName.length, 20);
      assert.equal(reasonOf(at(9)), 'FAILURE CREDENTIALS_IN_USE', 'taken credentials');
      assert.equal(await s.store.findDeviceByName(T, `${p}-creds`), undefined, 'no device without its credentials');
      assert.deepEqual(at(10), earlier, 'DESIGN 3: the lost answer again');
      if (withFault) {
        assert.equal(reasonOf(results[11]), 'injected fault', 'the failing device fails alone');
        assert.equal(await s.store.findDeviceByName(T, `${p}-fault`), undefined);
      } else assert.equal(reasonOf(at(11)), 'SUCCESS');
      assert.equal(reasonOf(at(12)), 'SUCCESS', 'hook granted');
      assert.equal(reasonOf(at(13)), 'FAILURE HOOK_DENIED', 'hook denied');

      // What each SUCCESS wrote: device, credentials, provisionState, the hook's grant, one audit row.
      const created = [0, 1, 2, 3, 4, 8, 12, ...(withFault ? [] : [11]), at(5).status === 'SUCCESS' ? 5 : 6].map(at);
      const audit = await s.store.listAudit(T, { page: 0, pageSize: 1000 });
      for (const r of created) {
        assert.ok(r.status === 'SUCCESS');
        const device = (await s.store.getDeviceById(r.deviceId))!;
        assert.equal(device.name, r.deviceName);
        assert.equal(device.createdByProvisioning, true);
        assert.equal((await s.store.getCredentialsOfDevice(r.deviceId))?.credentialsId, r.credentialsValue);
        const state = await s.store.getAttributes(r.deviceId, 'SERVER_SCOPE', ['provisionState']);
        assert.deepEqual(state.map((a) => a.value), [{ type: 'STRING', value: 'provisioned' }]);
        assert.equal(audit.data.filter((a) => a.entityId === r.deviceId && a.actionType === 'PROVISION_SUCCESS').length, 1, `one audit row for ${r.deviceName}`);
      }
      const granted = at(12);
      assert.ok(granted.status === 'SUCCESS');
      assert.equal((await s.store.getDeviceById(granted.deviceId))?.label, 'Line 7');
      assert.deepEqual((await s.store.getAttributes(granted.deviceId, 'SERVER_SCOPE', ['batch'])).map((a) => a.value), [{ type: 'STRING', value: 'B-1' }]);
      const failures = audit.data.filter((a) => a.actionType === 'PROVISION_FAILURE' && String(a.entityName).startsWith(p)).map((a) => a.actionData.reason).sort();
      assert.deepEqual(failures, ['CREDENTIALS_IN_USE', 'DEVICE_EXISTS', 'DEVICE_EXISTS', 'HOOK_DENIED']);
      assert.ok(!JSON.stringify(audit.data).includes(keyOf('plain').provisionDeviceSecret), 'no secret in the audit log');
      faulty = undefined;
    }

    test('a mixed group gets the answers each request gets alone', () => scenario('mixed', false));
    test('a device that fails to write fails alone; its group is written one by one', () => scenario('fault', true));
  });
}

groupSuite('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-groups-'));
  const store = await openSqliteStore(join(dir, 'test.db'), { synchronous: 'normal' });
  const hookCaller = new FetchHookCaller();
  const core = await createCore({ store, bus: new MemoryBus(), logger: silentLogger, settings, hookCaller });
  return {
    core,
    store,
    hold: () => {
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      const held = store.transaction(() => gate);
      return async () => {
        open();
        await held;
      };
    },
    async close() {
      await core.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

let pg: TestPostgres | undefined;
groupSuite(
  'postgres',
  async () => {
    pg = await startPostgres();
    const store = await openPostgresStore(await pg.createDatabase());
    const core = await createCore({ store, bus: new MemoryBus(), logger: silentLogger, settings, hookCaller: new FetchHookCaller() });
    return {
      core,
      store,
      async close() {
        await core.close();
        await store.close();
        await pg?.stop();
      },
    };
  },
  skipUnlessPostgres(),
);
