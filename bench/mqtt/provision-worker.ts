/**
 * One load-generating process of bench/mqtt/provision.ts (forked by it; several run at once so the generator is not
 * the bottleneck). Each of its `sessions` slots runs MQTT 3.1.1 provisioning sessions back to back on raw sockets with
 * pre-encoded packets (no MQTT client library on the hot path): CONNECT as `provision` -> CONNACK -> SUBSCRIBE
 * `/provision/response` + PUBLISH the request (one write) -> the answer on `/provision/response` -> PUBACK of the answer
 * + DISCONNECT (one write), and the slot's next session starts at once. Device names (and client ids) are unique per
 * worker for its whole life: a fixed-width counter patched into the packet templates.
 *
 * Parent -> worker: a RunOrder. Worker -> parent: a RunReport.
 */
import mqtt, { type Packet } from 'mqtt-packet';
import net from 'node:net';

export interface RunOrder {
  /** `fleetgate`: PUBLISH to `/provision/request`, the answer must say SUCCESS. `echo`: PUBLISH to `/provision/response`. */
  kind: 'fleetgate' | 'echo';
  port: number;
  /** Concurrent sessions in this worker. */
  sessions: number;
  seconds: number;
  /** This worker's number (two digits in every device name). */
  index: number;
}

export interface RunReport {
  /** Sessions answered within `seconds`. */
  ok: number;
  failed: number;
  seconds: number;
  /** Sessions answered in all, with those that were still open when the time was up (for CPU per session). */
  okWithDrain: number;
}

const COUNTER_DIGITS = 10;
const STUCK_MS = 30_000;

/** The packets of one kind of session, with where the per-session name goes in each. */
function templates(kind: RunOrder['kind'], index: number) {
  const prefix = `mq${String(index).padStart(2, '0')}-`;
  const placeholder = `${prefix}${'0'.repeat(COUNTER_DIGITS)}`;
  const connect = mqtt.generate({ cmd: 'connect', protocolVersion: 4, protocolId: 'MQTT', clientId: placeholder, clean: true, keepalive: 0, username: 'provision' } as Packet);
  const body = JSON.stringify({ deviceName: placeholder, provisionDeviceKey: 'bench-key', provisionDeviceSecret: 'bench-secret' });
  const topic = kind === 'fleetgate' ? '/provision/request' : '/provision/response';
  const request = Buffer.concat([
    mqtt.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '/provision/response', qos: 1 }] } as Packet),
    mqtt.generate({ cmd: 'publish', topic, payload: Buffer.from(body), qos: 1, messageId: 2, retain: false, dup: false } as Packet),
  ]);
  const at = (buf: Buffer) => buf.indexOf(placeholder) + prefix.length;
  return { connect, connectAt: at(connect), request, requestAt: at(request), prefix };
}

/** PUBACK of the server's PUBLISH `messageId`, then DISCONNECT. */
function goodbye(messageId: number): Buffer {
  return Buffer.from([0x40, 2, messageId >> 8, messageId & 0xff, 0xe0, 0]);
}

const readBuffer = Buffer.alloc(64 * 1024);
const SUCCESS = Buffer.from('"status":"SUCCESS"');

async function run(order: RunOrder): Promise<RunReport> {
  const t = templates(order.kind, order.index);
  let ok = 0;
  let failed = 0;
  let running = true;
  const started = new Map<net.Socket, number>();

  const startSession = () => {
    const name = String(++counter).padStart(COUNTER_DIGITS, '0');
    const connect = Buffer.from(t.connect);
    connect.write(name, t.connectAt, 'latin1');
    const request = Buffer.from(t.request);
    request.write(name, t.requestAt, 'latin1');
    // onread: every read lands in the worker's one buffer (no Buffer per read, no 'data' events).
    const socket = net.connect({ port: order.port, host: '127.0.0.1', noDelay: true, onread: { buffer: readBuffer, callback: (n: number, buf: Uint8Array) => (onData(buf as Buffer, n), true) } });
    started.set(socket, performance.now());
    let pending: Buffer | undefined;
    let done = false;
    const finish = (success: boolean, messageId?: number) => {
      if (done) return;
      done = true;
      started.delete(socket);
      if (success) {
        ok++;
        socket.end(goodbye(messageId ?? 0));
      } else {
        failed++;
        socket.destroy();
      }
      if (running) startSession();
    };
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
    const onData = (read: Buffer, n: number) => {
      const chunk = read.subarray(0, n);
      let buf = pending ? Buffer.concat([pending, chunk]) : chunk;
      pending = undefined;
      let at = 0;
      while (at + 2 <= buf.length && !done) {
        let length = 0;
        let mul = 1;
        let i = at + 1;
        for (; i < buf.length; i++) {
          length += (buf[i] & 0x7f) * mul;
          mul *= 128;
          if ((buf[i] & 0x80) === 0) break;
        }
        if (i >= buf.length || i + 1 + length > buf.length) break;
        const bodyAt = i + 1;
        const type = buf[at] >> 4;
        if (type === 2) {
          if (buf[bodyAt + 1] !== 0) return finish(false); // CONNACK refused
          socket.write(request);
        } else if (type === 3) {
          const topicEnd = bodyAt + 2 + buf.readUInt16BE(bodyAt);
          const qos = (buf[at] >> 1) & 3;
          const messageId = qos > 0 ? buf.readUInt16BE(topicEnd) : 0;
          const payload = buf.subarray(topicEnd + (qos > 0 ? 2 : 0), bodyAt + length);
          return finish(order.kind === 'echo' || payload.indexOf(SUCCESS) >= 0, messageId);
        }
        at = bodyAt + length;
      }
      if (at < buf.length) pending = Buffer.from(buf.subarray(at)); // a copy: the read buffer is reused
    };
    socket.write(connect);
  };

  const sweep = setInterval(() => {
    const now = performance.now();
    for (const [socket, since] of started) if (now - since > STUCK_MS) socket.destroy();
  }, 1000);
  const t0 = performance.now();
  for (let i = 0; i < order.sessions; i++) startSession();
  await new Promise((r) => setTimeout(r, order.seconds * 1000));
  running = false;
  const counted = { ok, failed, seconds: (performance.now() - t0) / 1000 };
  // Let the sessions still open finish (not counted) so the next round starts on a quiet server.
  const deadline = performance.now() + 10_000;
  while (started.size > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  for (const socket of started.keys()) socket.destroy();
  clearInterval(sweep);
  await new Promise((r) => setTimeout(r, 200)); // the server closes the last connections
  return { ...counted, okWithDrain: ok };
}

let counter = 0;
process.on('message', (order: RunOrder) => {
  run(order).then(
    (report) => process.send!(report),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
});
process.on('disconnect', () => process.exit(0));
