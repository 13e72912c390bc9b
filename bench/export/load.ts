/**
 * QoS 1 telemetry with a distinct `ts` on every PUBLISH (so every point is a stored row and nothing folds), from raw
 * sockets: each device keeps `window` publishes in flight; the PUBLISH bytes are built from one template with the ts
 * digits and packet id patched in.
 */
import mqtt, { type Packet } from 'mqtt-packet';
import net from 'node:net';

const TOPIC = 'v1/devices/me/telemetry';
const BASE_TS = 1_700_000_000_000;

/** A raw MQTT 3.1.1 connection of device `username` (its access token), CONNACKed, with no data listener left. */
export async function connectRaw(port: number, username: string): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  socket.on('error', () => {});
  const parser = mqtt.parser({ protocolVersion: 4 });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('CONNACK timeout')), 30_000);
    parser.on('packet', (p: Packet & { returnCode?: number }) => {
      clearTimeout(timer);
      if (p.cmd === 'connack' && p.returnCode === 0) resolve();
      else reject(new Error(`refused: ${p.returnCode}`));
    });
    socket.on('data', (c: Buffer) => parser.parse(c));
    socket.write(mqtt.generate({ cmd: 'connect', protocolVersion: 4, protocolId: 'MQTT', clientId: `${username}-${Date.now()}`, clean: true, keepalive: 0, username }));
  });
  socket.removeAllListeners('data');
  return socket;
}

/** Runs the load for `durationMs` after a 1 s warm-up; returns acknowledged messages per second and points sent. */
export async function distinctTsTelemetry(port: number, tokens: string[], durationMs: number, window = 64): Promise<{ rate: number; acked: number }> {
  const sockets = await Promise.all(tokens.map((t) => connectRaw(port, t)));
  const payloadOf = (ts: number) => `{"ts":${ts},"values":{"temperature":21.5,"humidity":40}}`;
  const template = mqtt.generate({ cmd: 'publish', topic: TOPIC, payload: Buffer.from(payloadOf(BASE_TS)), qos: 1, messageId: 1, retain: false, dup: false });
  const idAt = 2 + 2 + TOPIC.length;
  const tsAt = idAt + 2 + '{"ts":'.length;
  let acked = 0;
  let running = true;
  for (const socket of sockets) {
    let id = 0;
    let ts = BASE_TS;
    let partial: Buffer | undefined;
    const publishes = (n: number): Buffer => {
      const out = Buffer.allocUnsafe(template.length * n);
      for (let i = 0; i < n; i++) {
        const at = i * template.length;
        id = (id % 65535) + 1;
        template.copy(out, at);
        out.writeUInt16BE(id, at + idAt);
        out.write(String(++ts), at + tsAt, 'latin1');
      }
      return out;
    };
    socket.on('data', (chunk: Buffer) => {
      const bytes = partial ? Buffer.concat([partial, chunk]) : chunk;
      let at = 0;
      let acks = 0;
      while (at + 2 <= bytes.length && at + 2 + bytes[at + 1] <= bytes.length) {
        if (bytes[at] >> 4 === 4) acks++;
        at += 2 + bytes[at + 1];
      }
      partial = at < bytes.length ? bytes.subarray(at) : undefined;
      acked += acks;
      if (running && acks > 0) socket.write(publishes(acks));
    });
    socket.write(publishes(window));
  }
  await new Promise((r) => setTimeout(r, 1000));
  const start = acked;
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, durationMs));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const measured = acked - start;
  running = false;
  await new Promise((r) => setTimeout(r, 500));
  for (const s of sockets) s.destroy();
  return { rate: measured / seconds, acked };
}
