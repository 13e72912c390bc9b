/** A core over a fresh SQLite file with a given Throttle, for the hardening tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import { createCore, type CoreInstance } from '../../src/core/core.ts';
import { DEFAULT_TENANT_ID } from '../../src/core/model.ts';
import type { Throttle } from '../../src/core/throttle/index.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { silentLogger } from '../support/core.ts';
import { TEST_ACTOR } from '../support/harness.ts';

const SETTINGS = { batchMaxRows: 5000, batchMaxDelayMs: 0, rpcDefaultTimeout: 2000, provisionRetryAfterMs: 3000 };

/** A core with `throttle`, one ALLOW_CREATE profile (key `key`, secret `secret`) and a device with token `token-1`. */
export async function coreWith(throttle: Throttle): Promise<{ core: CoreInstance; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-throttle-'));
  const store = await openSqliteStore(join(dir, 'db'), { synchronous: 'normal' });
  const core = await createCore({ store, bus: new MemoryBus(), settings: SETTINGS, logger: silentLogger, throttle });
  const profile = await core.profiles.save(
    DEFAULT_TENANT_ID,
    { name: 'P', provisionType: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceKey: 'key', profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 'secret' } } },
    TEST_ACTOR,
  );
  await core.devices.save(DEFAULT_TENANT_ID, { name: 'device-1', deviceProfileId: profile.id }, TEST_ACTOR, 'token-1');
  return {
    core,
    async close() {
      await core.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
