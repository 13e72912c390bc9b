/**
 * Starts a throwaway PostgreSQL 15 for tests and benchmarks: initdb into a temp dir, loopback only, a random port,
 * the unix socket inside the temp dir; run as the `postgres` user when we are root. Stopped and deleted by stop().
 */
import { execFile, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { skipSuiteForMissingTool } from './tools.ts';

const run = promisify(execFile);

/** Where Debian puts the PostgreSQL 15 server binaries. */
export const PG_BIN = process.env.FLEETGATE_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** A running test PostgreSQL. */
export interface TestPostgres {
  port: number;
  /** URL of the `postgres` maintenance database. */
  url: string;
  /** Creates a fresh, empty database and returns its URL. */
  createDatabase(): Promise<string>;
  /** CPU seconds the server's processes (postmaster and its live children) have used so far (Linux /proc). */
  cpuSeconds(): number;
  /** Stops the server and deletes its directory. Idempotent. */
  stop(): Promise<void>;
  /** Stops the server (`pg_ctl stop -m fast`: sessions are ended) but keeps its data, for {@link resume}. */
  pause(): Promise<void>;
  /** Starts a paused server again on the same port, with the same data; resolves once it accepts connections. */
  resume(): Promise<void>;
  /** Ends every client connection to `database` with pg_terminate_backend; resolves with how many were ended. */
  terminateConnections(database: string): Promise<number>;
}

/** Why PostgreSQL tests cannot run here, or undefined when they can. */
export function postgresUnavailable(): string | undefined {
  if (!existsSync(join(PG_BIN, 'initdb')) || !existsSync(join(PG_BIN, 'pg_ctl'))) return `PostgreSQL 15 binaries not found in ${PG_BIN}`;
  return undefined;
}

/**
 * The `skip` option for a suite that needs PostgreSQL: a message when it is missing, false otherwise.
 * With FLEETGATE_TEST_REQUIRE_ALL=1 a missing server is an error instead of a skip.
 */
export function skipUnlessPostgres(): string | false {
  return skipSuiteForMissingTool(postgresUnavailable());
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const asRoot = userInfo().uid === 0;

/** Runs a PostgreSQL binary, as the postgres user when we are root (the server refuses to run as root). */
function pgCommand(binary: string, args: string[]): [string, string[]] {
  const path = join(PG_BIN, binary);
  return asRoot ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
}

/** Options of {@link startPostgres}. */
export interface StartPostgresOptions {
  /** Durable commits (fsync on). Tests turn it off for speed; benchmarks keep PostgreSQL's defaults. */
  durable?: boolean;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
}

/** Starts a fresh PostgreSQL server. */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<TestPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-pg-'));
  if (asRoot) chownSync(dir, pgUid(), pgGid());
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  const [initCmd, initArgs] = pgCommand('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-locale', '--no-sync']);
  await run(initCmd, initArgs);
  let port = 0;
  let started = false;
  let serverArgs = '';
  const ctl = (args: string[]) => pgCommand('pg_ctl', ['-D', data, ...args]);
  for (let attempt = 0; attempt < 5 && !started; attempt++) {
    port = await freePort();
    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: dir,
      max_connections: '200',
      ...(options.durable ? {} : { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' }),
      ...options.settings,
    };
    serverArgs = [`-p ${port}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
    const [cmd, args] = ctl(['-l', log, '-w', '-t', '60', '-o', serverArgs, 'start']);
    try {
      await run(cmd, args);
      started = true;
    } catch {
      // most likely the port was taken in between: try another
    }
  }
  if (!started) {
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start:\n${text}`);
  }
  const stopNow = () => {
    const [cmd, args] = ctl(['-m', 'immediate', '-w', 'stop']);
    spawnSync(cmd, args, { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stopNow); // a crashed test run must not leave a server behind
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let databases = 0;
  let stopped: Promise<void> | undefined;
  return {
    port,
    url,
    cpuSeconds: () => processTreeCpuSeconds(Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0])),
    async createDatabase() {
      const name = `fleetgate_test_${++databases}`;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    async pause() {
      const [cmd, args] = ctl(['-m', 'fast', '-w', '-t', '60', 'stop']);
      await run(cmd, args);
    },
    async resume() {
      const [cmd, args] = ctl(['-l', log, '-w', '-t', '60', '-o', serverArgs, 'start']);
      await run(cmd, args);
    },
    async terminateConnections(database: string) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const result = await client.query('select pg_terminate_backend(pid) as ended from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [database]);
        return result.rows.filter((r) => r.ended).length;
      } finally {
        await client.end();
      }
    },
    stop() {
      return (stopped ??= (async () => {
        process.removeListener('exit', stopNow);
        const [cmd, args] = ctl(['-m', 'fast', '-w', 'stop']);
        await run(cmd, args).catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      })());
    },
  };
}

function pgUid(): number {
  return Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
}

function pgGid(): number {
  return Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
}

/** utime + stime of `pid` and its direct children, in seconds (Linux; 0 elsewhere). */
function processTreeCpuSeconds(pid: number): number {
  let ticks = 0;
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return 0;
  }
  for (const e of entries) {
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(e) === pid || Number(fields[1]) === pid) ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process ended meanwhile
    }
  }
  return ticks / 100; // USER_HZ is 100 on Linux
}
