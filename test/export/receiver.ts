/**
 * A real HTTP webhook receiver for export tests: records every POST (body, headers, when), answers what the test
 * scripts (a status per request, a Retry-After, a stall), and collects the messages it accepted, duplicates counted.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { once } from 'node:events';

export interface ReceivedMessage {
  id: string;
  rule: string;
  kind: string;
  deviceId: string | null;
  ts: number;
  data: any;
}

export interface Delivery {
  at: number;
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** What to answer to a POST: a status (with optional headers), or 'stall' to never answer. */
export type Answer = { status: number; headers?: Record<string, string>; delayMs?: number } | 'stall';

export interface Receiver {
  url: string;
  deliveries: Delivery[];
  /** Messages of accepted (2xx) deliveries, in arrival order; duplicates included. */
  accepted: ReceivedMessage[];
  /** Distinct message ids accepted. */
  acceptedIds(): Set<string>;
  duplicates(): number;
  /** Decides each answer; default 200. */
  answer: (delivery: { n: number; body: string }) => Answer;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const stalled: ServerResponse[] = [];
  let n = 0;
  const receiver: Receiver = {
    url: '',
    deliveries: [],
    accepted: [],
    acceptedIds: () => new Set(receiver.accepted.map((m) => m.id)),
    duplicates: () => receiver.accepted.length - receiver.acceptedIds().size,
    answer: () => ({ status: 200 }),
    close: async () => {},
  };
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString();
    const answer = receiver.answer({ n: n++, body });
    if (answer === 'stall') {
      stalled.push(res);
      receiver.deliveries.push({ at: Date.now(), status: 0, headers: req.headers, body });
      return;
    }
    if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs));
    receiver.deliveries.push({ at: Date.now(), status: answer.status, headers: req.headers, body });
    if (answer.status >= 200 && answer.status < 300) receiver.accepted.push(...(JSON.parse(body) as ReceivedMessage[]));
    res.writeHead(answer.status, answer.headers ?? {});
    res.end(answer.status >= 400 ? 'receiver says no' : '');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  receiver.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
  receiver.close = async () => {
    for (const r of stalled) r.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return receiver;
}

/** Polls until `check` holds; throws naming `what` after `timeoutMs` (generous: the suite runs on busy machines). */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The telemetry `ts` values of accepted messages, in arrival order (duplicates included). */
export function acceptedPoints(receiver: Receiver, deviceId?: string): number[] {
  return receiver.accepted.filter((m) => m.kind === 'telemetry' && (deviceId === undefined || m.deviceId === deviceId)).flatMap((m) => m.data.telemetry.map((p: { ts: number }) => p.ts));
}

