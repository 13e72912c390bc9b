/**
 * Raw-TCP helpers for the socket front's tests (src/transports/http/socket-front.ts): scripted byte streams written to
 * a server, everything it answers collected until it closes the connection, and answers normalised for comparison.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

/**
 * One step of a client script: bytes to write (each its own write), `{ responses: n }` to wait until n status lines
 * came back, or `{ end: true }` to end the client's side (FIN).
 */
export type Step = string | Buffer | { responses: number } | { end: true };

/** How many HTTP status lines `data` holds (responses and interim 100s). */
export const statusLines = (data: string): number => data.split('HTTP/1.1 ').length - 1;

/**
 * Runs `steps` on a new connection to `port` and returns every byte the server sent until it closed the connection
 * (latin1). Fails after `limitMs` (generous: the server closes idle connections by its keep-alive timeout).
 */
export function runScript(port: number, steps: readonly Step[], limitMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    let data = '';
    let waiting: { count: number; go: () => void } | undefined;
    let stepsDone = 0;
    let connected = false;
    const timer = setTimeout(() => {
      const where = `connected ${connected}, local port ${socket.localPort}, ${stepsDone}/${steps.length} steps done, ${socket.bytesWritten} bytes written`;
      socket.destroy();
      reject(new Error(`the server did not close within ${limitMs} ms (${where}); got ${JSON.stringify(data)}`));
    }, limitMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      data += chunk;
      if (waiting && statusLines(data) >= waiting.count) {
        const { go } = waiting;
        waiting = undefined;
        go();
      }
    });
    socket.on('error', () => {}); // a reset after the server's close is part of some scripts
    socket.on('close', () => {
      clearTimeout(timer);
      if (waiting) waiting.go();
      resolve(data);
    });
    const run = async (): Promise<void> => {
      for (const step of steps) {
        if (socket.destroyed) return;
        if (typeof step === 'string' || Buffer.isBuffer(step)) {
          socket.write(step);
          // Let the bytes leave as their own segment before the next write.
          await new Promise((go) => setImmediate(go));
        } else if ('responses' in step) {
          if (statusLines(data) < step.responses) await new Promise<void>((go) => (waiting = { count: step.responses, go }));
        } else {
          socket.end();
        }
        stepsDone++;
      }
    };
    socket.once('connect', () => {
      connected = true;
      void run();
    });
  });
}

/** An answer with what changes by the moment blanked: Date headers and error timestamps. */
export function normalized(response: string): string {
  return response.replace(/\r\nDate: [^\r]*/gi, '\r\nDate: -').replace(/"timestamp":\d+/g, '"timestamp":0');
}

/** A raw HTTP/1.1 POST to `path` with `body`; `headers` are written as given after Host. */
export function rawPost(path: string, body: string, headers = 'Content-Type: application/json\r\n'): string {
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** A raw client socket and everything it received (latin1); `closed` once the server closed it. */
export async function client(port: number): Promise<{ text: string; closed: boolean; socket: Socket }> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const state = { text: '', closed: false, socket };
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (state.text += chunk));
  socket.on('close', () => (state.closed = true));
  socket.on('error', () => {});
  return state;
}
