/**
 * The Store contract: one suite every Store implementation must pass (SQLite and PostgreSQL). It covers every method
 * of the port, including the races that unique indexes decide (DESIGN 7).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Store } from '../../src/core/ports/store.ts';
import { attributeContract, rpcContract, timeseriesContract } from './contract-data.ts';
import { assertUnique, deviceContract, profileContract } from './contract-entities.ts';
import { credentialsGraceContract } from './contract-credentials-grace.ts';
import { gatewayContract } from './contract-gateway.ts';
import { importContract } from './contract-import.ts';
import { audit, credentials, device, OTHER_TENANT, profile, seedDevice, TENANT, unique, user } from './fixtures.ts';

/** A store under test and how to dispose of it. */
export interface OpenedStore {
  store: Store;
  close(): Promise<void>;
}

/** Options of {@link storeContract}. */
export interface StoreContractOptions {
  /** Skip the whole suite with this message (e.g. the database server is not installed). */
  skip?: string | false;
  /** Known gap: why LONG values beyond ±2^53 do not read back exactly (the test then reports TODO). */
  bigintTodo?: string;
}

/** Defines the contract tests for the store that `open` returns; one store serves the whole suite. */
export function storeContract(name: string, open: () => Promise<OpenedStore>, options: StoreContractOptions = {}): void {
  describe(`Store contract: ${name}`, { skip: options.skip }, () => {
    let opened: OpenedStore | undefined;
    const store = () => opened!.store;
    before(async () => {
      opened = await open();
    });
    after(async () => {
      await opened?.close();
    });

    test('an open store answers ping', async () => {
      await store().ping();
    });

    profileContract(store);
    deviceContract(store);
    importContract(store);
    attributeContract(store, { bigintTodo: options.bigintTodo });
    timeseriesContract(store);
    rpcContract(store);
    gatewayContract(store);
    userContract(store);
    auditContract(store);
    settingsAndTransactionContract(store);
    credentialsGraceContract(store);
  });
}

function userContract(store: () => Store): void {
  describe('users', () => {
    test('a user reads back by email and id; the password can change; countUsers counts', async () => {
      const before = await store().countUsers();
      const u = user();
      await store().insertUser(u);
      assert.equal(await store().countUsers(), before + 1);
      assert.deepEqual(await store().findUserByEmail(u.email), u);
      assert.deepEqual(await store().getUser(u.id), u);
      await store().updateUserPassword(u.id, 'new-hash');
      assert.equal((await store().getUser(u.id))?.passwordHash, 'new-hash');
      assert.equal(await store().findUserByEmail('nobody@example.com'), undefined);
      assert.equal(await store().getUser('missing'), undefined);
    });
    test('a second user with the same email is a user_email violation', async () => {
      const u = user();
      await store().insertUser(u);
      await assert.rejects(store().insertUser(user({ email: u.email })), (e) => (assertUnique(e, 'user_email'), true));
    });
  });
}

function auditContract(store: () => Store): void {
  describe('audit log', () => {
    test('entries read back newest first, paged, per tenant', async () => {
      const tenant = `tenant-${unique('t')}`;
      const entries = Array.from({ length: 5 }, (_, i) => audit({ tenantId: tenant, createdTime: 1000 + i, actionStatus: i % 2 ? 'FAILURE' : 'SUCCESS', actionFailureDetails: i % 2 ? 'why' : null }));
      for (const e of entries) await store().insertAudit(e);
      await store().insertAudit(audit({ tenantId: OTHER_TENANT }));
      const first = await store().listAudit(tenant, { pageSize: 2, page: 0 });
      assert.equal(first.totalElements, 5);
      assert.equal(first.totalPages, 3);
      assert.equal(first.hasNext, true);
      assert.deepEqual(first.data, [entries[4], entries[3]]);
      const last = await store().listAudit(tenant, { pageSize: 2, page: 2 });
      assert.deepEqual(last.data, [entries[0]]);
      assert.equal(last.hasNext, false);
    });
  });
}

function settingsAndTransactionContract(store: () => Store): void {
  describe('settings', () => {
    test('initSetting: the first writer wins, later ones read its value', async () => {
      const key = unique('setting');
      assert.equal(await store().initSetting(key, 'first'), 'first');
      assert.equal(await store().initSetting(key, 'second'), 'first');
    });
    test('20 concurrent initSetting calls all return one value', async () => {
      const key = unique('setting');
      const values = await Promise.all(Array.from({ length: 20 }, (_, i) => store().initSetting(key, `v${i}`)));
      assert.equal(new Set(values).size, 1);
    });
  });

  describe('transactions', () => {
    test('work that resolves commits every write', async () => {
      const p = profile();
      const d = device(p.id);
      const result = await store().transaction(async (tx) => {
        await tx.insertProfile(p);
        await tx.insertDevice(d, credentials(d.id));
        await tx.saveAttributes({ deviceId: d.id, scope: 'SERVER_SCOPE', entries: [{ key: 'k', value: { type: 'BOOLEAN', value: false } }], ts: 1 });
        return 'done';
      });
      assert.equal(result, 'done');
      assert.ok(await store().getDeviceById(d.id));
      assert.equal((await store().getAttributes(d.id, 'SERVER_SCOPE')).length, 1);
    });
    test('work that throws rolls every write back and rethrows', async () => {
      const p = profile();
      const d = device(p.id);
      const boom = new Error('boom');
      await assert.rejects(
        store().transaction(async (tx) => {
          await tx.insertProfile(p);
          await tx.insertDevice(d, credentials(d.id));
          await tx.insertAudit(audit({ tenantId: TENANT }));
          assert.ok(await tx.getDeviceById(d.id), 'a transaction sees its own writes');
          throw boom;
        }),
        (e) => e === boom,
      );
      assert.equal(await store().getDeviceById(d.id), undefined);
      assert.equal(await store().getProfile(TENANT, p.id), undefined);
    });
    test('a unique violation inside a transaction surfaces as UniqueViolation and undoes earlier writes', async () => {
      const { device: taken } = await seedDevice(store());
      const p = profile();
      await assert.rejects(
        store().transaction(async (tx) => {
          await tx.insertProfile(p);
          const d = device(taken.profileId, { name: taken.name });
          await tx.insertDevice(d, credentials(d.id));
        }),
        (e) => (assertUnique(e, 'device_name'), true),
      );
      assert.equal(await store().getProfile(TENANT, p.id), undefined);
    });
    test('a savepoint that throws undoes only its own writes; the transaction goes on and commits', async () => {
      const kept = profile();
      const undone = profile();
      const after = profile();
      const { device: taken } = await seedDevice(store());
      await store().transaction(async (tx) => {
        await tx.insertProfile(kept);
        await assert.rejects(
          tx.savepoint(async (sp) => {
            await sp.insertProfile(undone);
            const d = device(taken.profileId, { name: taken.name });
            await sp.insertDevice(d, credentials(d.id)); // a unique violation aborts the statement, not the transaction
          }),
          (e) => (assertUnique(e, 'device_name'), true),
        );
        assert.equal(await tx.savepoint(async (sp) => (await sp.insertProfile(after), 'ok')), 'ok');
      });
      assert.ok(await store().getProfile(TENANT, kept.id));
      assert.equal(await store().getProfile(TENANT, undone.id), undefined);
      assert.ok(await store().getProfile(TENANT, after.id));
    });
    test('savepoint outside a transaction is a transaction of its own', async () => {
      const p = profile();
      await assert.rejects(
        store().savepoint(async (tx) => {
          await tx.insertProfile(p);
          throw new Error('undo');
        }),
      );
      assert.equal(await store().getProfile(TENANT, p.id), undefined);
      await store().savepoint((tx) => tx.insertProfile(p));
      assert.ok(await store().getProfile(TENANT, p.id));
    });
    test('a transaction nested in a transaction joins it', async () => {
      const p = profile();
      await assert.rejects(
        store().transaction(async (tx) => {
          await tx.transaction(async (inner) => inner.insertProfile(p));
          throw new Error('outer fails');
        }),
      );
      assert.equal(await store().getProfile(TENANT, p.id), undefined);
    });
  });
}
