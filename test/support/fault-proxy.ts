/**
 * A TCP proxy on 127.0.0.1 between a client and a real server, to inject network faults a real server cannot be made to
 * show on its own: a connection that dies just after the server answered (the answer never reaching the client), and
 * connections that go silent (nothing forwarded either way, sockets left open, as with a peer that vanished).
 */
import net from 'node:net';

export interface FaultProxy {
  port: number;
  /** The next answer from the server, on any connection, is dropped and that connection closed at both ends (once). */
  dropNextAnswer(): void;
  /** Every connection open now stops forwarding in both directions, its sockets kept open; new ones work. */
  silenceOpenConnections(): void;
  /** Every connection open now is closed at both ends, and the port stops listening (connections refused) until {@link accept}. */
  refuse(): Promise<void>;
  /** Ends {@link refuse}: the port listens again. */
  accept(): Promise<void>;
  /** Connections accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

/** Starts a proxy to 127.0.0.1:`targetPort`. */
export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  const open = new Set<{ client: net.Socket; upstream: net.Socket; silent: boolean }>();
  let dropNext = false;
  let accepted = 0;
  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream, silent: false };
    open.add(pair);
    const end = () => {
      open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk) => pair.silent || upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (pair.silent) return;
      if (dropNext) {
        dropNext = false;
        end();
        return;
      }
      client.write(chunk);
    });
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    dropNextAnswer: () => void (dropNext = true),
    silenceOpenConnections: () => open.forEach((pair) => (pair.silent = true)),
    refuse: () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const { client, upstream } of [...open]) {
        client.destroy();
        upstream.destroy();
      }
      return closed;
    },
    accept: () =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      }),
    get accepted() {
      return accepted;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const { client, upstream } of open) {
          client.destroy();
          upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
