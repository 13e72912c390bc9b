/**
 * A minimal MQTT client for tests: writes packets with mqtt-packet and collects what the server sends,
 * over an in-memory duplex or a TCP socket. Waits are bounded so a broken server fails a test instead
 * of hanging it.
 */
import mqtt, { type Packet } from 'mqtt-packet';
import net from 'node:net';
import { Duplex } from 'node:stream';

/** One end of an in-memory byte pipe. */
class PipeEnd extends Duplex {
  peer!: PipeEnd;
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.push(chunk);
    cb();
  }
  override _final(cb: (err?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.push(null);
    cb();
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.destroy();
    cb(err);
  }
}

/** Two connected in-memory duplex streams: bytes written to one are read from the other. */
export function duplexPair(): [Duplex, Duplex] {
  const a = new PipeEnd();
  const b = new PipeEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

// A bound for a packet that should come, not a speed check: generous so a busy machine does not fail the suite.
const WAIT_MS = 30_000;

/** A test-side MQTT client over a Duplex. */
export class WireClient {
  readonly received: Packet[] = [];
  private readonly parser;
  private waiters: Array<() => void> = [];
  closed = false;
  readonly closedPromise: Promise<void>;

  constructor(
    readonly stream: Duplex,
    public version: 3 | 4 | 5 = 4,
  ) {
    this.parser = mqtt.parser({ protocolVersion: version });
    this.parser.on('packet', (p: Packet) => {
      this.received.push(p);
      this.wake();
    });
    this.parser.on('error', () => {});
    stream.on('data', (chunk: Buffer) => this.parser.parse(chunk));
    stream.on('error', () => {});
    this.closedPromise = new Promise((resolve) => {
      const done = () => {
        this.closed = true;
        this.wake();
        resolve();
      };
      stream.once('close', done);
      stream.once('end', done);
    });
  }

  /** Connects over TCP to 127.0.0.1:port. */
  static async tcp(port: number, version: 3 | 4 | 5 = 4): Promise<WireClient> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new WireClient(socket, version);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  send(packet: Packet | Record<string, unknown>): void {
    this.stream.write(mqtt.generate(packet as Packet, { protocolVersion: this.version }));
  }

  raw(bytes: Buffer): void {
    this.stream.write(bytes);
  }

  /** Sends CONNECT and returns the CONNACK. */
  async connect(fields: { clientId?: string; username?: string; password?: string; keepalive?: number; clean?: boolean; properties?: Record<string, unknown> } = {}): Promise<Packet & Record<string, any>> {
    this.send({
      cmd: 'connect',
      protocolVersion: this.version,
      protocolId: this.version === 3 ? 'MQIsdp' : 'MQTT',
      clientId: fields.clientId ?? 'test-client',
      clean: fields.clean ?? true,
      keepalive: fields.keepalive ?? 0,
      ...(fields.username !== undefined ? { username: fields.username } : {}),
      ...(fields.password !== undefined ? { password: Buffer.from(fields.password) } : {}),
      ...(fields.properties ? { properties: fields.properties } : {}),
    });
    return this.next('connack');
  }

  /** Waits for the next packet (of `cmd`, if given) not consumed yet. */
  async next(cmd?: string): Promise<Packet & Record<string, any>> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const index = this.received.findIndex((p) => cmd === undefined || p.cmd === cmd);
      if (index >= 0) return this.received.splice(index, 1)[0] as Packet & Record<string, any>;
      if (this.closed) throw new Error(`connection closed while waiting for ${cmd ?? 'a packet'}`);
      if (Date.now() > deadline) throw new Error(`no ${cmd ?? 'packet'} within ${WAIT_MS} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits until the server closed the connection; returns the packets it sent and nobody consumed. */
  async waitClosed(): Promise<Packet[]> {
    const timeout = new Promise<never>((_, reject) => {
      const timer = setTimeout(() => reject(new Error(`connection not closed within ${WAIT_MS} ms`)), WAIT_MS);
      void this.closedPromise.then(() => clearTimeout(timer));
    });
    await Promise.race([this.closedPromise, timeout]);
    return this.received.splice(0);
  }

  /** Publishes; for QoS 1 returns the PUBACK. */
  async publish(topic: string, payload: string | Buffer, qos: 0 | 1 | 2 = 1, messageId = 1, properties?: Record<string, unknown>): Promise<(Packet & Record<string, any>) | undefined> {
    this.send({ cmd: 'publish', topic, payload, qos, messageId: qos > 0 ? messageId : undefined, retain: false, dup: false, ...(properties ? { properties } : {}) });
    return qos > 0 ? this.next('puback') : undefined;
  }

  async subscribe(topics: Array<[string, 0 | 1 | 2]>, messageId = 1): Promise<Packet & Record<string, any>> {
    this.send({ cmd: 'subscribe', messageId, subscriptions: topics.map(([topic, qos]) => ({ topic, qos })) });
    return this.next('suback');
  }

  end(): void {
    this.stream.end();
  }

  destroy(): void {
    this.stream.destroy();
  }
}

/** Lets queued I/O and promise callbacks run (ordering only; never a timing assertion). */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
