/** A core over a fresh SQLite file and the in-memory bus (or the given one), with no transports: for core-level tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bus } from '../../src/core/ports/bus.ts';
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import { createCore, type CoreInstance } from '../../src/core/core.ts';
import type { CoreSettings } from '../../src/core/core-types.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { KyselyStore } from '../../src/store/kysely/kysely-store.ts';

export const silentLogger = { info() {}, warn() {}, error() {}, debug() {} };

export interface TestCore {
  core: CoreInstance;
  store: KyselyStore;
  bus: Bus;
  close(): Promise<void>;
}

export async function createTestCore(settings: Partial<CoreSettings> = {}, bus: Bus = new MemoryBus()): Promise<TestCore> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-core-'));
  const store = await openSqliteStore(join(dir, 'test.db'), { synchronous: 'normal' });
  const core = await createCore({
    store,
    bus,
    logger: silentLogger,
    settings: { batchMaxRows: 5000, batchMaxDelayMs: 0, rpcDefaultTimeout: 2000, provisionRetryAfterMs: 3000, ...settings },
  });
  return {
    core,
    store,
    bus,
    async close() {
      await core.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
