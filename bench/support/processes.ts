/** Helpers for benchmarks: free ports, child servers, wrk runs. Loopback only, every run bounded in time. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { once } from 'node:events';

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  return port;
}

export async function waitForHttp(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.status < 500) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up within ${timeoutMs} ms`);
}

export function startProcess(command: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  return child;
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await once(child, 'exit');
  clearTimeout(timer);
}

export interface WrkResult {
  requestsPerSec: number;
  requests: number;
  non2xx: number;
  socketErrors: string | null;
  latencyAvg: string;
}

/** Runs wrk against `url` and parses its summary. */
export function runWrk(url: string, opts: { connections: number; threads: number; seconds: number; script?: string }): WrkResult {
  const args = ['-t', String(opts.threads), '-c', String(opts.connections), '-d', `${opts.seconds}s`, '--latency'];
  if (opts.script) args.push('-s', opts.script);
  args.push(url);
  const out = spawnSync('wrk', args, { encoding: 'utf8', timeout: (opts.seconds + 30) * 1000 });
  if (out.status !== 0) throw new Error(`wrk failed: ${out.stderr || out.stdout}`);
  const text = out.stdout;
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const total = /(\d+) requests in/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const errors = /Socket errors: (.*)/.exec(text);
  const latency = /Latency\s+([\d.]+\w+)/.exec(text);
  return {
    requestsPerSec: rps ? Number(rps[1]) : 0,
    requests: total ? Number(total[1]) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: errors ? errors[1] : null,
    latencyAvg: latency ? latency[1] : '?',
  };
}
