/**
 * Outage figures for bench/RESULTS.md (issue 18): fleetgate as a real process under MQTT QoS 1 load (4 clients, two
 * MQTT 5 and two MQTT 3.1.1, 8 messages in flight each), with each fault repeated --rounds times:
 *   pg-stop       PostgreSQL stopped (pg_ctl stop -m fast), down --hold seconds, started again
 *   pg-terminate  every connection of fleetgate's database ended with pg_terminate_backend
 *   redis-restart redis-server stopped, down --hold seconds, started again on the same port
 *   sqlite-full   the SQLite file's tmpfs filled (a filler file leaves 1 MB, telemetry fills the rest), then freed
 * For each: restarts survived (process alive and /healthz UP afterwards) out of tries, seconds from the part's
 * return to /healthz UP and to the first new acknowledgement (median and worst), messages acknowledged, and
 * acknowledged messages not stored exactly once (lost).
 *
 *   node --import tsx bench/resilience/outages.ts [--rounds 5] [--hold 2] [--only pg-stop,sqlite-full]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startPostgres, type TestPostgres } from '../../test/support/postgres.ts';
import { startRedis, type TestRedis } from '../../test/support/redis.ts';
import { loginAdmin, startServerProcess, type ServerProcess } from '../../test/support/process-server.ts';
import { createTokenDevice } from '../../test/support/telemetry-load.ts';
import { exitCode, health, notStoredOnce, startMqttLoad, untilDown, untilUp } from '../../test/resilience/support.ts';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, hold: { type: 'string', default: '2' }, only: { type: 'string' } } });
const ROUNDS = Number(args.rounds);
const HOLD_MS = Number(args.hold) * 1000;
const PASSWORD = 'bench-outage-password';
const TOKEN = 'bench-outage-token';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Figures {
  fault: string;
  survived: number;
  tries: number;
  toUp: number[];
  toAck: number[];
  acked: number;
  lost: number;
}

/** One node under load; `fault(round)` injects the fault and resolves with Date.now() of the part's return. */
async function measure(fault: string, env: Record<string, string>, inject: (server: ServerProcess) => Promise<number>, padBytes = 0): Promise<Figures> {
  const server = await startServerProcess({ ...env, FLEETGATE_ADMIN_PASSWORD: PASSWORD, FLEETGATE_LOG_LEVEL: 'warn' });
  const figures: Figures = { fault, survived: 0, tries: ROUNDS, toUp: [], toAck: [], acked: 0, lost: 0 };
  try {
    const admin = await loginAdmin(server.httpUrl, 'admin@fleetgate.local', PASSWORD);
    const deviceId = await createTokenDevice(server.httpUrl, admin, TOKEN, `bench-${fault}`);
    const load = startMqttLoad(server.mqttPort, TOKEN, 4, 8, padBytes);
    await load.ackAfter(0);
    for (let round = 1; round <= ROUNDS; round++) {
      try {
        const returned = await inject(server);
        const up = await untilUp(server);
        const ack = await load.ackAfter(returned);
        figures.toUp.push(Math.max(0, up - returned) / 1000);
        figures.toAck.push(Math.max(0, ack - returned) / 1000);
        if (exitCode(server) === undefined && (await health(server.httpUrl)).status === 200) figures.survived++;
      } catch (err) {
        console.error(`${fault} round ${round}: ${(err as Error).message}`);
        if (exitCode(server) !== undefined) break;
      }
    }
    await load.stop();
    figures.acked = load.acked.size;
    if (exitCode(server) === undefined) {
      figures.lost = (await notStoredOnce(server.httpUrl, admin, deviceId, load.acked.keys(), Math.max(...load.acked.keys()))).length;
    } else figures.lost = NaN; // the process is gone: the figures cannot be read through it
  } finally {
    server.child.kill('SIGKILL');
    await server.exited;
  }
  return figures;
}

async function withPostgres(run: (pg: TestPostgres, url: string, redis: TestRedis) => Promise<Figures>): Promise<Figures> {
  const pg = await startPostgres({ durable: true });
  const redis = await startRedis();
  try {
    return await run(pg, await pg.createDatabase(), redis);
  } finally {
    await redis.stop();
    await pg.stop();
  }
}

const faults: Record<string, () => Promise<Figures>> = {
  'pg-stop': () =>
    withPostgres((pg, url, redis) =>
      measure('pg-stop', { FLEETGATE_DATABASE: url, FLEETGATE_BUS: redis.url }, async (server) => {
        await pg.pause();
        await untilDown(server, 'database');
        await sleep(HOLD_MS);
        await pg.resume();
        return Date.now();
      }),
    ),
  'pg-terminate': () =>
    withPostgres((pg, url, redis) =>
      measure('pg-terminate', { FLEETGATE_DATABASE: url, FLEETGATE_BUS: redis.url }, async () => {
        await pg.terminateConnections(url.slice(url.lastIndexOf('/') + 1));
        return Date.now(); // nothing to wait for: the database never left
      }),
    ),
  'redis-restart': () =>
    withPostgres(async (pg, url, first) => {
      let redis = first;
      return measure('redis-restart', { FLEETGATE_DATABASE: url, FLEETGATE_BUS: redis.url }, async (server) => {
        const port = redis.port;
        await redis.stop();
        await untilDown(server, 'bus');
        await sleep(HOLD_MS);
        redis = await startRedis({ port });
        return Date.now();
      }).finally(() => redis.stop());
    }),
  'sqlite-full': async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleetgate-bench-full-'));
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', dir]).status !== 0) throw new Error('cannot mount a tmpfs (run as root)');
    const filler = join(dir, 'filler');
    try {
      return await measure(
        'sqlite-full',
        { FLEETGATE_DATABASE: join(dir, 'fleetgate.db') },
        async (server) => {
          const { bavail, bsize } = statfsSync(dir);
          writeFileSync(filler, Buffer.alloc(Math.max(0, bavail * bsize - 1024 * 1024)));
          await untilDown(server, 'database');
          await sleep(HOLD_MS);
          rmSync(filler);
          return Date.now();
        },
        400,
      );
    } finally {
      rmSync(filler, { force: true });
      spawnSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

const median = (xs: number[]) => (xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]);
const worst = (xs: number[]) => (xs.length === 0 ? NaN : Math.max(...xs));
const s = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(2));

const selected = args.only ? args.only.split(',') : Object.keys(faults);
console.log(`# fleetgate outages ${new Date().toISOString()}: ${cpus().length} cores (${cpus()[0]?.model.trim()}), node ${process.version}, ${ROUNDS} rounds, down ${HOLD_MS / 1000} s each`);
console.log('fault          survived  return->UP s (median/worst)  return->first ack s (median/worst)  acked  lost');
for (const name of selected) {
  const f = await faults[name]();
  console.log(
    `${f.fault.padEnd(14)} ${`${f.survived}/${f.tries}`.padEnd(9)} ${`${s(median(f.toUp))} / ${s(worst(f.toUp))}`.padEnd(28)} ${`${s(median(f.toAck))} / ${s(worst(f.toAck))}`.padEnd(35)} ${String(f.acked).padEnd(6)} ${f.lost}`,
  );
}
