/**
 * A whole server on SQLite whose writer thread keeps dying as soon as it starts: each stop is logged once with its
 * cause and the cool-down before the next thread (no secret in the line), writes fail meanwhile (nothing acknowledged
 * that is not committed), and writes work again once the fault is gone. The fault: the thread's database path made one
 * that cannot be opened, and the running thread ended.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SqliteWriterThread } from '../../src/store/sqlite-writer-thread.ts';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/harness.ts';
import { createTokenDevice } from '../support/telemetry-load.ts';

const TOKEN = 'restart-log-device-token';

describe('a server whose SQLite writer thread dies at once', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ sqliteThreadMinParameters: 0 }); // every group commit on the thread
  });
  after(async () => {
    await server?.close();
  });

  test('logs each stop with the cool-down, fails writes meanwhile, and writes again once the fault is gone', async () => {
    await createTokenDevice(server.httpUrl, await server.adminToken(), TOKEN, 'restart-log-device');
    const post = (n: number) => fetch(`${server.httpUrl}/api/v1/${TOKEN}/telemetry`, { method: 'POST', body: JSON.stringify({ n }) });
    assert.equal((await post(1)).status, 200);
    const [thread] = [...SqliteWriterThread.open];
    const options = (thread as unknown as { options: { path: string } }).options;
    const path = options.path;
    const restarts = () => server.logLines.filter((l) => l.includes('sqlite_writer_restart')).map((l) => JSON.parse(l));
    try {
      options.path = join(path, 'missing', 'nope.db');
      await (thread as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
      const statuses: number[] = [];
      for (let i = 0; restarts().length < 3 && i < 200; i++) statuses.push((await post(100 + i)).status);
      assert.ok(statuses.length > 0 && !statuses.includes(200), `no write acknowledged while no thread can open the file: ${statuses}`);
      const logged = restarts();
      assert.ok(logged.length >= 3, `stops logged: ${logged.length}`);
      assert.deepEqual(logged.slice(0, 3).map((l) => l.delayMs), [100, 200, 400]);
      for (const line of logged) {
        assert.equal(line.level, 50, 'logged as an error');
        assert.match(line.msg, /^SQLite writer thread stopped \(.+\); a new one starts in \d+ ms$/);
        assert.ok(!JSON.stringify(line).includes(TOKEN) && !JSON.stringify(line).includes(ADMIN_PASSWORD), 'no secret in the line');
      }
    } finally {
      options.path = path;
    }
    let status = 0;
    for (let i = 0; status !== 200 && i < 100; i++) {
      status = (await post(1000 + i)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 200, 'writes work again once the file can be opened');
  });
});
