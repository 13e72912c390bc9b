/**
 * OTA storage on SQLite and PostgreSQL: packages in 64 KiB pieces read by range, uploads streamed with nothing kept
 * on failure, and the rollout queue's pacing and leases (one node, and two PostgreSQL nodes claiming at once).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AuditRecorder } from '../../src/core/audit.ts';
import { newId } from '../../src/core/ids.ts';
import { OTA_PIECE_SIZE, type OtaPackage, type RolloutItem } from '../../src/core/ota/model.ts';
import { OtaPackages } from '../../src/core/ota/packages.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/core/ports/store.ts';
import { skipUnlessPostgres, startPostgres } from '../support/postgres.ts';
import { profile, TENANT } from './fixtures.ts';

const ACTOR = { userId: null, userName: null, source: { transport: 'admin' as const } };

async function* pieces(data: Buffer, step: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += step) yield data.subarray(i, i + step);
}

function otaContract(name: string, open: () => Promise<{ store: Store; second?: () => Promise<Store>; close(): Promise<void> }>, options: { skip?: string | false } = {}) {
  describe(`OTA storage: ${name}`, { skip: options.skip }, () => {
    it('an upload streams into pieces; any byte range reads back exactly, one range read at a time', async () => {
      const { store, close } = await open();
      try {
        const p = profile();
        await store.insertProfile(p);
        const packages = new OtaPackages(store, new AuditRecorder(store), async () => true, 1 << 30);
        const pkg = await packages.save(TENANT, { title: `t-${newId()}`, version: '1', type: 'FIRMWARE', deviceProfileId: p.id }, ACTOR);
        const data = randomBytes(3 * OTA_PIECE_SIZE + 1234);
        const sha = createHash('sha256').update(data).digest('hex');
        const saved = await packages.upload(TENANT, pkg.id, { checksumAlgorithm: 'sha256', checksum: sha, fileName: 'f.bin', contentType: 'application/octet-stream', data: pieces(data, 10_007) }, ACTOR);
        assert.equal(saved.dataSize, data.length);
        assert.equal(saved.checksum, sha);
        const stored = await store.ota.readPieces(saved.blobId!, 0, 10);
        assert.deepEqual(stored.map((b) => b.length), [OTA_PIECE_SIZE, OTA_PIECE_SIZE, OTA_PIECE_SIZE, 1234]);
        for (const [start, end] of [[0, 1], [0, data.length], [OTA_PIECE_SIZE - 5, OTA_PIECE_SIZE + 5], [100_000, 200_000], [data.length - 1, data.length]]) {
          assert.ok((await packages.readRange(saved, start, end)).equals(data.subarray(start, end)), `${start}..${end}`);
          const streamed: Buffer[] = [];
          for await (const part of packages.read(saved, start, end, 1)) streamed.push(part);
          assert.ok(Buffer.concat(streamed).equals(data.subarray(start, end)));
        }
      } finally {
        await close();
      }
    });

    it('a checksum mismatch or a failing stream keeps nothing; an interrupted upload is swept later', async () => {
      const { store, close } = await open();
      try {
        const p = profile();
        await store.insertProfile(p);
        const packages = new OtaPackages(store, new AuditRecorder(store), async () => true, 1 << 30);
        const pkg = await packages.save(TENANT, { title: `m-${newId()}`, version: '1', type: 'SOFTWARE', deviceProfileId: p.id }, ACTOR);
        const data = randomBytes(2 * OTA_PIECE_SIZE);
        await assert.rejects(packages.upload(TENANT, pkg.id, { checksumAlgorithm: 'MD5', checksum: 'ff', fileName: 'f', contentType: 'x/y', data: pieces(data, 4096) }, ACTOR), /Wrong otaPackage file!/);
        async function* broken() {
          yield data.subarray(0, OTA_PIECE_SIZE * 1.5);
          throw new Error('client went away');
        }
        await assert.rejects(packages.upload(TENANT, pkg.id, { checksumAlgorithm: 'MD5', checksum: undefined, fileName: 'f', contentType: 'x/y', data: broken() }, ACTOR), /client went away/);
        assert.equal((await store.ota.getPackage(pkg.id))!.blobId, null);
        assert.equal(await store.ota.sweepOrphanBlobs(Date.now() + 1), 0, 'failed uploads dropped their pieces');
        // A crash between pieces: the blob stays until the sweep sees it is old and unreferenced.
        const orphan = newId();
        await store.ota.beginBlob(orphan, Date.now() - 10_000);
        await store.ota.writePieces(orphan, 0, [Buffer.alloc(10)]);
        assert.equal(await store.ota.sweepOrphanBlobs(Date.now() - 20_000), 0, 'too young to sweep');
        assert.equal(await store.ota.sweepOrphanBlobs(Date.now()), 1);
        assert.deepEqual(await store.ota.readPieces(orphan, 0, 0), []);
      } finally {
        await close();
      }
    });

    it('the rollout queue: groups of N, the pacer spaces them, leases hold, a newer package supersedes', async () => {
      const { store, second, close } = await open();
      try {
        const now = 1_000_000_000_000;
        const pkg = newId();
        const items: RolloutItem[] = Array.from({ length: 5 }, (_, i) => ({ deviceId: `dev-${i}`, type: 'FIRMWARE', packageId: pkg, queuedTs: now + i }));
        await store.ota.enqueueRollout(items);
        const claim = (s: Store, at: number) => s.transaction((tx) => tx.ota.claimRollout(at, 2, 10_000, 100));
        assert.deepEqual((await claim(store, now)).map((i) => i.deviceId), ['dev-0', 'dev-1']);
        assert.deepEqual(await claim(store, now + 199), [], 'the pacer holds the next group back 2 x 100 ms');
        assert.deepEqual((await claim(store, now + 200)).map((i) => i.deviceId), ['dev-2', 'dev-3']);
        await store.ota.completeRollout(items[0]);
        // dev-1 was claimed and never completed (its node died): back once its lease ran out; dev-2, dev-3 still leased.
        assert.deepEqual((await claim(store, now + 10_001)).map((i) => i.deviceId), ['dev-1', 'dev-4']);
        const newer = newId();
        await store.ota.enqueueRollout([{ deviceId: 'dev-3', type: 'FIRMWARE', packageId: newer, queuedTs: now + 50 }]);
        await store.ota.completeRollout(items[3]); // the old item's completion does not remove the newer one
        assert.equal(await store.ota.countQueued(newer), 1);
        if (second) {
          // Two nodes claim at the same moment: the pacer row decides, and no item is claimed twice.
          const other = await second();
          try {
            const more: RolloutItem[] = Array.from({ length: 20 }, (_, i) => ({ deviceId: `x-${i}`, type: 'SOFTWARE', packageId: pkg, queuedTs: now + 100 + i }));
            await store.ota.enqueueRollout(more);
            const at = now + 100_000;
            const [a, b] = await Promise.all([claim(store, at), claim(other, at)]);
            assert.equal(a.length + b.length, 2, 'one group between the two nodes');
          } finally {
            await other.close();
          }
        }
      } finally {
        await close();
      }
    });
  });
}

otaContract('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-ota-store-'));
  const store = await openSqliteStore(join(dir, 'store.db'), { synchronous: 'normal' });
  return {
    store,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

otaContract(
  'PostgreSQL',
  async () => {
    const server = await startPostgres();
    const url = await server.createDatabase();
    const store = await openPostgresStore(url);
    return {
      store,
      second: () => openPostgresStore(url),
      async close() {
        await store.close();
        await server.stop();
      },
    };
  },
  { skip: skipUnlessPostgres() },
);
