/**
 * A child process for test/store/sqlite-checkpointer.test.ts: opens a SQLite store at argv[2] with a small WAL restart
 * size and writes group commits back to back, printing each batch's last ts once writeBatch resolved (committed), until
 * it is killed. Not a test file.
 */
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { TsPoint } from '../../src/core/model.ts';
import { seedDevice } from './fixtures.ts';

const store = await openSqliteStore(process.argv[2], { synchronous: process.argv[3] === 'full' ? 'full' : 'normal', checkpoints: { intervalMs: 5, restartPages: 256 } });
const { device } = await seedDevice(store);
process.stdout.write(`device ${device.id}\n`);
let ts = 0;
for (;;) {
  const telemetry: TsPoint[] = [];
  for (let i = 0; i < 2000; i++) telemetry.push({ deviceId: device.id, key: 'v', ts: ++ts, value: { type: 'STRING', value: `${ts}-${'x'.repeat(100)}` } });
  await store.writeBatch({ telemetry, attributes: [] });
  process.stdout.write(`acked ${ts}\n`);
}
