/**
 * A WebSocket test client over the `ws` package: records every message and the close frame, and waits for
 * conditions with generous upper bounds (never a fixed sleep).
 */
import WebSocket from 'ws';

export interface V1Message {
  subscriptionId: number;
  errorCode: number;
  errorMsg: string | null;
  data: Record<string, [number, string | null][]> | null;
  latestValues: Record<string, number>;
}

export interface TestSocket {
  ws: WebSocket;
  messages: V1Message[];
  /** When each message arrived (Date.now()), by index. */
  arrivals: number[];
  /** Binary frames received (every reply of the API is a text frame, live updates sent from bytes included). */
  binaryFrames: number;
  /** Set once the socket closed: the code and reason the server sent. */
  closed: { code: number; reason: string } | undefined;
  send(frame: unknown): void;
  /** Waits for the first message (after `from`, an index into `messages`) matching `match`. */
  next(match: (m: V1Message) => boolean, from?: number, ms?: number): Promise<V1Message>;
  /** Waits for the close frame. */
  waitClosed(ms?: number): Promise<{ code: number; reason: string }>;
  close(): void;
}

const WAIT_MS = 20_000;

export function wsUrl(httpUrl: string, path: string): string {
  return httpUrl.replace(/^http/, 'ws') + path;
}

/** Opens a socket and resolves once it is open. */
export async function openSocket(url: string): Promise<TestSocket> {
  const ws = new WebSocket(url);
  const socket: TestSocket = {
    ws,
    messages: [],
    arrivals: [],
    binaryFrames: 0,
    closed: undefined,
    send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
    next: (match, from = 0, ms = WAIT_MS) =>
      poll(() => socket.messages.slice(from).find(match), ms, 'a matching WebSocket message').then((m) => m!),
    waitClosed: (ms = WAIT_MS) => poll(() => socket.closed, ms, 'the WebSocket close').then((c) => c!),
    close: () => ws.terminate(),
  };
  ws.on('message', (data, isBinary) => {
    if (isBinary) socket.binaryFrames++;
    socket.arrivals.push(Date.now());
    socket.messages.push(JSON.parse(String(data)));
  });
  ws.on('close', (code, reason) => (socket.closed = { code, reason: reason.toString() }));
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return socket;
}

/** Polls `check` every 10 ms until it returns something; rejects naming `what` after `ms` (a hang guard). */
export async function poll<T>(check: () => T | undefined, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
