/**
 * A real HTTP server on 127.0.0.1 playing a pre-provisioning hook: it checks the signature of every call, records
 * the bodies, and answers as the test sets (`respond`), including not at all until released.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hookSignature } from '../../src/core/provisioning/pre-provisioning-hook.ts';

export interface HookCall {
  body: Record<string, unknown>;
  raw: string;
  signatureValid: boolean;
}

export type HookBehaviour = (call: HookCall, res: ServerResponse) => void;

export class TestHook {
  readonly calls: HookCall[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** What the hook does with the next calls. */
  respond: HookBehaviour = (_c, res) => json(res, 200, { allow: true });
  private readonly held = new Set<ServerResponse>();
  private constructor(private readonly server: Server, readonly secret: string) {}

  static async start(secret: string): Promise<TestHook> {
    let hook!: TestHook;
    const server = createServer((req, res) => hook.handle(req, res));
    hook = new TestHook(server, secret);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return hook;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  /** Never answers (until `releaseAll` or close). */
  hold(res: ServerResponse): void {
    this.held.add(res);
  }

  releaseAll(answer: unknown = { allow: true }): void {
    for (const res of this.held) json(res, 200, answer);
    this.held.clear();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const timestamp = String(req.headers['x-fleetgate-timestamp'] ?? '');
      const signatureValid = req.headers['x-fleetgate-signature'] === hookSignature(this.secret, timestamp, raw);
      const call = { body: JSON.parse(raw) as Record<string, unknown>, raw, signatureValid };
      this.calls.push(call);
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      res.on('close', () => this.inFlight--);
      this.respond(call, res);
    });
  }

  async close(): Promise<void> {
    for (const res of this.held) res.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body));
}
