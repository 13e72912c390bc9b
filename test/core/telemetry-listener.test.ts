/** Telemetry.ingestJsonTo: a malformed payload is told to the listener once, later, and a listener that throws is logged. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCommitter } from '../../src/core/group-commit.ts';
import { Telemetry } from '../../src/core/telemetry.ts';
import type { DeviceIdentity } from '../../src/core/api.ts';
import type { Store, WriteBatch } from '../../src/core/ports/store.ts';
import { silentLogger } from '../support/core.ts';

const device = { deviceId: 'd1', tenantId: 't', deviceName: 'n', profileId: 'p', credentialsType: 'ACCESS_TOKEN' } as DeviceIdentity;

test('a malformed payload reaches a throwing listener once, after the call, and the throw is logged (no uncaught exception)', async () => {
  const written: WriteBatch[] = [];
  const store = { writeBatch: async (batch: WriteBatch) => void written.push(batch) } as unknown as Store;
  const logged: string[] = [];
  const committer = new GroupCommitter(store, { maxRows: 100, maxDelayMs: 0 }, { ...silentLogger, error: (_o: object, msg?: string) => void logged.push(msg ?? '') });
  const telemetry = new Telemetry(store, committer);
  const told: string[] = [];
  let settle!: () => void;
  const done = new Promise<void>((resolve) => (settle = resolve));
  telemetry.ingestJsonTo(device, Buffer.from('{"temperature":'), {
    committed: () => void told.push('committed'),
    failed: (err) => {
      told.push(`failed: ${(err as { code?: string }).code}`);
      settle();
      throw new Error('listener bug');
    },
  });
  assert.deepEqual(told, [], 'nothing told during the call');
  await done;
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(told, ['failed: MALFORMED_PAYLOAD']);
  assert.deepEqual(logged, ['commit listener failed']);
  assert.equal(written.length, 0, 'nothing written');
  await committer.close();
});
