/**
 * Test support for the CoAP transport: a core over SQLite with the transport on 127.0.0.1 and a random port,
 * node-coap requests (a new Agent per client), libcoap's coap-client-notls, and raw datagrams.
 */
import { execFile } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { Agent, request, type IncomingMessage, type OutgoingMessage } from 'coap';
import { loadConfig } from '../../../src/config.ts';
import { DEFAULT_TENANT_ID, type ProvisionType } from '../../../src/core/model.ts';
import { startCoapTransport, type CoapTransport, type CoapTransportOptions } from '../../../src/transports/coap/index.ts';
import { createTestCore, silentLogger, type TestCore } from '../../support/core.ts';
import { TEST_ACTOR } from '../../support/harness.ts';
import { skipSuiteForMissingTool } from '../../support/tools.ts';

export const T = DEFAULT_TENANT_ID;

export interface CoapFixture extends TestCore {
  transport: CoapTransport;
  port: number;
  url(path: string): string;
}

/** Core + CoAP transport on 127.0.0.1, port 0. */
export async function startCoap(options: CoapTransportOptions = {}): Promise<CoapFixture> {
  const t = await createTestCore();
  const config = { ...loadConfig({ env: {} }), host: '127.0.0.1', coapPort: 0 };
  const transport = await startCoapTransport({ core: t.core, config, logger: silentLogger, host: '127.0.0.1', port: 0, options });
  return {
    ...t,
    transport,
    port: transport.port,
    url: (path) => `coap://127.0.0.1:${transport.port}${path}`,
    async close() {
      await transport.close();
      await t.close();
    },
  };
}

/** Creates a profile with a provisioning strategy; key `${name}-key`, secret `${name}-secret` unless given. */
export async function provisionProfile(t: TestCore, name: string, type: ProvisionType, key: string | null = `${name}-key`, secret: string | null = `${name}-secret`) {
  return t.core.profiles.save(
    T,
    { name, transportType: 'COAP', provisionType: type, provisionDeviceKey: key, profileData: { provisionConfiguration: { type, provisionDeviceSecret: secret } } },
    TEST_ACTOR,
  );
}

/** A device with a known access token in a profile. */
export const device = (t: TestCore, name: string, profileId: string, token: string) => t.core.devices.save(T, { name, deviceProfileId: profileId }, TEST_ACTOR, token);

export interface CoapAnswer {
  code: string;
  payload: Buffer;
  text: string;
  format: unknown;
  res: IncomingMessage;
}

/** One request with its own node-coap Agent (closed afterwards). */
export async function coapRequest(
  port: number,
  path: string,
  opts: { method?: 'GET' | 'POST' | 'PUT' | 'DELETE'; payload?: Buffer | string; confirmable?: boolean; query?: string; options?: Record<string, Buffer | number | string> } = {},
): Promise<CoapAnswer> {
  const agent = new Agent({ type: 'udp4' });
  try {
    return await new Promise<CoapAnswer>((resolve, reject) => {
      const req: OutgoingMessage = request({
        hostname: '127.0.0.1',
        port,
        pathname: path,
        query: opts.query,
        method: opts.method ?? 'POST',
        confirmable: opts.confirmable ?? true,
        agent,
      });
      for (const [k, v] of Object.entries(opts.options ?? {})) req.setOption(k as 'Accept', v as Buffer);
      req.on('response', (res: IncomingMessage) => {
        resolve({ code: res.code, payload: res.payload, text: res.payload.toString('utf8'), format: res.headers['Content-Format'], res });
      });
      req.on('error', reject);
      req.on('timeout', reject);
      req.end(opts.payload);
    });
  } finally {
    agent.close();
  }
}

export const jsonBody = (a: CoapAnswer) => JSON.parse(a.text) as Record<string, unknown>;

/** Is coap-client-notls here? Missing -> skip, unless FLEETGATE_TEST_REQUIRE_ALL=1 (then the test fails). */
export const COAP_CLIENT = '/usr/bin/coap-client-notls';
export function coapClientSkip(): string | false {
  return skipSuiteForMissingTool(existsSync(COAP_CLIENT) ? undefined : `${COAP_CLIENT} not installed (apt install libcoap3-bin)`);
}

/** Runs coap-client-notls; resolves with its stdout and stderr (it prints the payload to stdout). */
export function coapClient(args: string[], timeoutMs = 30000): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve) => {
    execFile(COAP_CLIENT, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ stdout, stderr, code: err ? ((err as { code?: number }).code ?? null) : 0 });
    });
  });
}

/** A raw UDP client for message-layer tests. */
export class RawClient {
  readonly sock: Socket = createSocket('udp4');
  private readonly inbox: Buffer[] = [];
  private waiters: (() => void)[] = [];

  async open(): Promise<this> {
    await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', () => r()));
    this.sock.on('message', (m) => {
      this.inbox.push(m);
      for (const w of this.waiters.splice(0)) w();
    });
    return this;
  }

  send(port: number, datagram: Buffer): void {
    this.sock.send(datagram, port, '127.0.0.1');
  }

  /** Next datagram, or undefined after `ms` (a bound on waiting, never a pass/fail criterion by itself). */
  async next(ms = 5000): Promise<Buffer | undefined> {
    const deadline = Date.now() + ms;
    while (this.inbox.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((r) => {
        const timer = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          r();
        });
      });
    }
    return this.inbox.shift();
  }

  close(): Promise<void> {
    return new Promise((r) => this.sock.close(() => r()));
  }
}

/** Polls `check` until it is true; fails after `tries` rounds (bounded; the wait is not the assertion). */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, tries = 200, everyMs = 25): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for: ${what}`);
}
