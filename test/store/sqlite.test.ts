/** The Store contract against SQLite (a fresh file in a temp dir): writer thread on (default), off, and with every statement through it. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { storeContract } from './store-contract.ts';

storeContract('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-store-'));
  const store = await openSqliteStore(join(dir, 'store.db'), { synchronous: 'normal' });
  return {
    store,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

// The same contract with statements on the event loop (config sqliteWriterThread = off).
storeContract('SQLite, writer thread off', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-store-'));
  const store = await openSqliteStore(join(dir, 'store.db'), { synchronous: 'normal', writerThread: false });
  return {
    store,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

// Every statement through the writer thread (no main-thread connection).
storeContract('SQLite, every statement through the writer thread', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-store-'));
  const store = await openSqliteStore(join(dir, 'store.db'), { synchronous: 'normal', writerThread: true, mainConnection: false });
  return {
    store,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

// Every group commit on the writer thread, reads and other transactions on the main connection (config
// sqliteThreadMinParameters = 0): a batch's statements travel with its COMMIT.
storeContract('SQLite, every group commit on the writer thread', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-store-'));
  const store = await openSqliteStore(join(dir, 'store.db'), { synchronous: 'normal', writerThread: true, threadMinParameters: 0 });
  return {
    store,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
