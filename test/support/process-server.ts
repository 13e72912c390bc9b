/**
 * Runs fleetgate as a real child process (`bin/fleetgate.js start`), for tests that kill or signal the server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ensureBuilt } from './build.ts';

export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

export interface ServerProcess {
  child: ChildProcess;
  httpUrl: string;
  httpPort: number;
  mqttPort: number;
  /** The CoAP (UDP) port. */
  coapPort: number;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'fleetgate.js');

/**
 * Starts the server with `env` on top of loopback defaults; resolves when /healthz answers 200. A port picked here
 * can be taken by another process between the pick and the server's bind (an outgoing connection's ephemeral port
 * counts too); a start that fails with EADDRINUSE on picked ports is tried again on new ones.
 */
export async function startServerProcess(env: Record<string, string>, opts: { waitReady?: boolean } = {}): Promise<ServerProcess> {
  ensureBuilt();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(env, opts);
    } catch (error) {
      if (!(error instanceof PortTakenError) || attempt >= 3) throw error;
    }
  }
}

class PortTakenError extends Error {}

async function startOnce(env: Record<string, string>, opts: { waitReady?: boolean }): Promise<ServerProcess> {
  const httpPort = env.FLEETGATE_HTTP_PORT ? Number(env.FLEETGATE_HTTP_PORT) : await freePort();
  const mqttPort = env.FLEETGATE_MQTT_PORT ? Number(env.FLEETGATE_MQTT_PORT) : await freePort();
  const coapPort = env.FLEETGATE_COAP_PORT ? Number(env.FLEETGATE_COAP_PORT) : await freePort();
  let out = '';
  let err = '';
  const child = spawn(process.execPath, [BIN, 'start'], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      FLEETGATE_HOST: '127.0.0.1',
      FLEETGATE_HTTP_PORT: String(httpPort),
      FLEETGATE_MQTT_PORT: String(mqttPort),
      FLEETGATE_COAP_PORT: String(coapPort),
      FLEETGATE_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  if (opts.waitReady !== false) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) {
        const message = `server exited with ${child.exitCode}: ${err}`;
        const taken = /EADDRINUSE.*:(\d+)\)/.exec(err)?.[1];
        const picked = taken !== undefined && ![env.FLEETGATE_HTTP_PORT, env.FLEETGATE_MQTT_PORT, env.FLEETGATE_COAP_PORT].includes(taken);
        throw picked ? new PortTakenError(message) : new Error(message);
      }
      try {
        const healthy = (await fetch(`${httpUrl}/healthz`, { signal: AbortSignal.timeout(5000) })).status === 200;
        if (healthy && listensOn(child.pid!, httpPort)) break;
        // Another test's server took the port between the pick and the bind; the child is about to exit on EADDRINUSE.
      } catch {
        /* not listening yet (or another process holds the port and does not answer) */
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`server did not become ready: ${err}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { child, httpUrl, httpPort, mqttPort, coapPort, stdout: () => out, stderr: () => err, exited };
}

/**
 * Whether process `pid` holds the TCP socket listening on `port`: a /healthz 200 on a picked port may come from
 * another test's server that bound it first (CI once logged in to the wrong server and got 401). Linux /proc only;
 * elsewhere it trusts the answer.
 */
function listensOn(pid: number, port: number): boolean {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      return true;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length > 9 && fields[3] === '0A' && fields[1]!.endsWith(`:${hexPort}`)) inodes.add(fields[9]!);
    }
  }
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        return target.startsWith('socket:[') && inodes.has(target.slice(8, -1));
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** Logs in and returns an admin JWT. */
export async function loginAdmin(httpUrl: string, username: string, password: string): Promise<string> {
  const res = await fetch(`${httpUrl}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  if (res.status !== 200) throw new Error(`login failed: ${res.status}`);
  return ((await res.json()) as { token: string }).token;
}
