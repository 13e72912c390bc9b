/** Store contract: rotation's grace rows (migration 006), on SQLite and PostgreSQL alike. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Store } from '../../src/core/ports/store.ts';
import { seedDevice } from './fixtures.ts';

export function credentialsGraceContract(store: () => Store): void {
  describe('credentials grace (rotation)', () => {
    test('a grace row is found until it expires, replaced by a second insert, and purged per device or when expired', async () => {
      const id = `grace-${Math.random().toString(36).slice(2)}`;
      const row = { credentialsId: id, deviceId: 'dev-grace-1', credentialsType: 'ACCESS_TOKEN' as const, credentialsValue: null, expiresTime: 2_000_000_000_000 };
      await store().insertCredentialsGrace(row);
      assert.deepEqual(await store().findCredentialsGrace(id, 1_000), row);
      assert.equal(await store().findCredentialsGrace(id, 2_000_000_000_000), undefined, 'expired at its expiry time');
      await store().insertCredentialsGrace({ ...row, expiresTime: 3_000_000_000_000 });
      assert.equal((await store().findCredentialsGrace(id, 2_500_000_000_000))?.expiresTime, 3_000_000_000_000);
      assert.deepEqual(await store().deleteCredentialsGrace(1_000, 'dev-grace-1'), [id], "answers the device's retired ids");
      assert.equal(await store().findCredentialsGrace(id, 1_000), undefined);
      await store().insertCredentialsGrace({ ...row, credentialsId: `${id}-old`, expiresTime: 5_000 });
      await store().deleteCredentialsGrace(6_000);
      assert.equal(await store().findCredentialsGrace(`${id}-old`, 1_000), undefined, 'expired rows are purged');
    });

    test("currentCredentialsIds answers each device's credentials id now; unknown devices are absent", async () => {
      const a = await seedDevice(store());
      const b = await seedDevice(store());
      await store().updateCredentials({ ...b.credentials, credentialsId: `${b.credentials.credentialsId}-replaced` });
      const ids = await store().currentCredentialsIds([a.device.id, b.device.id, 'no-such-device']);
      assert.deepEqual(
        [...ids].sort(),
        [
          [a.device.id, a.credentials.credentialsId],
          [b.device.id, `${b.credentials.credentialsId}-replaced`],
        ].sort(),
      );
      assert.equal((await store().currentCredentialsIds([])).size, 0);
    });
  });
}
