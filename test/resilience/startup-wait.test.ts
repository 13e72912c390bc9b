/**
 * Issue 18: a node started while PostgreSQL and Redis are down waits for them, saying so in its log, instead of
 * exiting; it serves as soon as both are back.
 */
import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import { startPostgres, skipUnlessPostgres, type TestPostgres } from '../support/postgres.ts';
import { startRedis, skipUnlessRedis, type TestRedis } from '../support/redis.ts';
import { startServerProcess, type ServerProcess } from '../support/process-server.ts';
import { exitCode, until, untilUp } from './support.ts';

describe('start-up while PostgreSQL and Redis are down', { skip: skipUnlessPostgres() || skipUnlessRedis() }, () => {
  let postgres: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  let server: ServerProcess | undefined;

  after(async () => {
    server?.child.kill('SIGKILL');
    await server?.exited;
    await redis?.stop();
    await postgres?.stop();
  });

  it('waits for the database, then for the bus, with clear log lines, and then serves', async () => {
    postgres = await startPostgres();
    const url = await postgres.createDatabase();
    redis = await startRedis();
    const redisPort = redis.port;
    await redis.stop();
    await postgres.pause();
    const started = server = await startServerProcess({ FLEETGATE_DATABASE: url, FLEETGATE_BUS: `redis://127.0.0.1:${redisPort}`, FLEETGATE_ADMIN_PASSWORD: 'startup-wait-password' }, { waitReady: false });
    const waitingLines = (part: string) => started.stdout().split('\n').filter((l) => l.includes('"event":"waiting_for_dependency"') && l.includes(`"part":"${part}"`));
    await until('a line saying it waits for the database', () => (waitingLines('database').length >= 2 ? true : undefined));
    assert.match(waitingLines('database')[0], /waiting for the database: PostgreSQL cannot be reached \(ECONNREFUSED\); trying again in/);
    assert.equal(exitCode(started), undefined, 'still running while PostgreSQL is down');
    await postgres.resume();
    await until('a line saying it waits for the bus', () => (waitingLines('bus').length >= 1 ? true : undefined));
    assert.match(waitingLines('bus')[0], /waiting for the bus: Redis/);
    assert.equal(exitCode(started), undefined, 'still running while Redis is down');
    redis = await startRedis({ port: redisPort });
    await untilUp(started);
    // Log lines reach stdout in batches (up to 100 ms late, src/log.ts): wait for them rather than read at once.
    await until('a line saying the database is ready', () => (/"event":"dependency_ready","part":"database"/.test(started.stdout()) ? true : undefined));
    await until('a line saying the bus is ready', () => (/"event":"dependency_ready","part":"bus"/.test(started.stdout()) ? true : undefined));
  });
});
