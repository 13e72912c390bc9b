/**
 * MQTT load generator on raw sockets + mqtt-packet (much lighter than a full client library), so the
 * client side is not the bottleneck: pipelined QoS 1 telemetry, idle sessions, provisioning round trips.
 */
import mqtt, { type Packet } from 'mqtt-packet';
import { readFileSync } from 'node:fs';
import net from 'node:net';

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A bare MQTT 3.1.1 connection. */
class BareClient {
  private readonly parser = mqtt.parser({ protocolVersion: 4 });
  onPacket: (packet: Packet & Record<string, any>) => void = () => {};
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    this.parser.on('packet', (p: Packet) => this.onPacket(p as Packet & Record<string, any>));
    socket.on('data', (chunk: Buffer) => this.parser.parse(chunk));
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  /** Connects and completes CONNECT/CONNACK; rejects on refusal or after 30 s. */
  static async open(port: number, username: string, clientId: string): Promise<BareClient> {
    const socket = net.connect(port, '127.0.0.1');
    const client = new BareClient(socket);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('CONNACK timeout')), 30_000);
      socket.once('error', (err) => (clearTimeout(timer), reject(err)));
      client.onPacket = (p) => {
        clearTimeout(timer);
        if (p.cmd === 'connack' && p.returnCode === 0) resolve();
        else reject(new Error(`refused: ${p.returnCode}`));
      };
      socket.write(mqtt.generate({ cmd: 'connect', protocolVersion: 4, protocolId: 'MQTT', clientId, clean: true, keepalive: 0, username }));
    });
    return client;
  }

  send(packet: Record<string, unknown>): void {
    this.socket.write(mqtt.generate(packet as unknown as Packet));
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * QoS 1 telemetry from `tokens.length` devices, each keeping `window` publishes in flight, for `durationMs`.
 * Returns acknowledged messages per second. After CONNECT the clients leave mqtt-packet: the PUBLISH is encoded
 * once and only its packet id is patched, PUBACKs are counted straight from the bytes, and the publishes that
 * replace the acks of one read go out in one write, so the generator costs far less than any server it measures.
 * With `serverPid`, `cpuUsPerMsg` is the server's CPU time per acknowledged message over the measured window.
 */
export async function telemetryRate(port: number, tokens: string[], durationMs: number, window = 64, serverPid?: number): Promise<number & { cpuUsPerMsg?: number; loadCpuUsPerMsg?: number }> {
  const clients = await Promise.all(tokens.map((t, i) => BareClient.open(port, t, `tele-${i}-${Date.now()}`)));
  let acked = 0;
  let running = true;
  const payload = Buffer.from('{"temperature":21.5,"humidity":40,"ok":true}');
  const template = mqtt.generate({ cmd: 'publish', topic: 'v1/devices/me/telemetry', payload, qos: 1, messageId: 1, retain: false, dup: false });
  const idAt = template.length - payload.length - 2;
  for (const client of clients) {
    let id = 0;
    let partial: Buffer | undefined;
    const publishes = (n: number): Buffer => {
      const out = Buffer.allocUnsafe(template.length * n);
      for (let i = 0; i < n; i++) {
        id = (id % 65535) + 1;
        template.copy(out, i * template.length);
        out.writeUInt16BE(id, i * template.length + idAt);
      }
      return out;
    };
    client.socket.removeAllListeners('data');
    client.socket.on('data', (chunk: Buffer) => {
      const bytes = partial ? Buffer.concat([partial, chunk]) : chunk;
      let at = 0;
      let acks = 0;
      while (at + 2 <= bytes.length && at + 2 + bytes[at + 1] <= bytes.length) {
        if (bytes[at] >> 4 === 4) acks++; // PUBACK; remaining length < 128 for every packet sent here
        at += 2 + bytes[at + 1];
      }
      partial = at < bytes.length ? bytes.subarray(at) : undefined;
      acked += acks;
      if (running && acks > 0) client.socket.write(publishes(acks));
    });
    client.socket.write(publishes(window));
  }
  await new Promise((r) => setTimeout(r, 1000)); // warm-up, not counted
  const start = acked;
  const cpu0 = serverPid === undefined ? 0 : cpuSeconds(serverPid);
  const own0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, durationMs));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const messages = acked - start;
  const cpu = serverPid === undefined ? undefined : cpuSeconds(serverPid) - cpu0;
  const own = process.cpuUsage(own0);
  running = false;
  for (const c of clients) c.close();
  // loadCpuUsPerMsg: this process's CPU (the load generator) per message, for costs measured on a saturated machine.
  return Object.assign(messages / seconds, { cpuUsPerMsg: cpu === undefined ? undefined : (cpu * 1e6) / messages, loadCpuUsPerMsg: (own.user + own.system) / messages });
}

/**
 * Open-loop QoS 1 telemetry: every `tickMs`, each of `tokens.length` devices sends `perTick` publishes, whatever the
 * acks, for `durationMs` (after a 1 s warm-up). Returns acknowledged messages per second and, with `serverPid`, the
 * server's CPU time per acknowledged message: at a fixed offered rate below the server's capacity, that figure does not
 * depend on how fast the shared machine lets the server run (the saturating {@link telemetryRate} does).
 */
export async function telemetryAtRate(port: number, tokens: string[], durationMs: number, perTick: number, tickMs: number, serverPid?: number): Promise<number & { cpuUsPerMsg?: number }> {
  const clients = await Promise.all(tokens.map((t, i) => BareClient.open(port, t, `rate-${i}-${Date.now()}`)));
  let acked = 0;
  const payload = Buffer.from('{"temperature":21.5,"humidity":40,"ok":true}');
  const template = mqtt.generate({ cmd: 'publish', topic: 'v1/devices/me/telemetry', payload, qos: 1, messageId: 1, retain: false, dup: false });
  const idAt = template.length - payload.length - 2;
  const senders = clients.map((client) => {
    let id = 0;
    let partial: Buffer | undefined;
    client.socket.removeAllListeners('data');
    client.socket.on('data', (chunk: Buffer) => {
      const bytes = partial ? Buffer.concat([partial, chunk]) : chunk;
      let at = 0;
      while (at + 2 <= bytes.length && at + 2 + bytes[at + 1] <= bytes.length) {
        if (bytes[at] >> 4 === 4) acked++;
        at += 2 + bytes[at + 1];
      }
      partial = at < bytes.length ? bytes.subarray(at) : undefined;
    });
    return () => {
      const out = Buffer.allocUnsafe(template.length * perTick);
      for (let i = 0; i < perTick; i++) {
        id = (id % 65535) + 1;
        template.copy(out, i * template.length);
        out.writeUInt16BE(id, i * template.length + idAt);
      }
      client.socket.write(out);
    };
  });
  let next = 0;
  // Devices are spread over the tick, so the load comes evenly rather than in one burst per tick.
  const timer = setInterval(() => {
    const share = Math.ceil(senders.length / 10);
    for (let i = 0; i < share; i++) senders[(next + i) % senders.length]();
    next = (next + share) % senders.length;
  }, tickMs / 10);
  await new Promise((r) => setTimeout(r, 1000));
  const start = acked;
  const cpu0 = serverPid === undefined ? 0 : cpuSeconds(serverPid);
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, durationMs));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const messages = acked - start;
  const cpu = serverPid === undefined ? undefined : cpuSeconds(serverPid) - cpu0;
  clearInterval(timer);
  for (const c of clients) c.close();
  return Object.assign(messages / seconds, { cpuUsPerMsg: cpu === undefined ? undefined : (cpu * 1e6) / messages });
}

/**
 * Client ids of idle sessions, unique in this process: a broker ends a session whose client id connects again (MQTT
 * 3.1.1 §3.1.4), so a second call reusing the first call's ids would replace its sessions instead of adding to them.
 */
let idleClientIds = 0;

/** Opens `tokens.length` idle sessions (at most `parallel` handshakes at once); returns a closer. */
export async function idleSessions(port: number, tokens: string[], parallel = 500): Promise<{ count: number; open(): number; close(): Promise<void> }> {
  const clients: BareClient[] = [];
  for (let i = 0; i < tokens.length; i += parallel) {
    const batch = tokens.slice(i, i + parallel).map((t) => BareClient.open(port, t, `idle-${idleClientIds++}`));
    clients.push(...(await Promise.all(batch)));
  }
  return {
    count: clients.length,
    /** Sessions whose socket the server has not closed. */
    open: () => clients.filter((c) => !c.socket.destroyed && c.socket.readyState === 'open').length,
    async close() {
      for (const c of clients) c.close();
      await Promise.all(clients.map((c) => c.closed));
    },
  };
}

/** Provisioning round trips (connect, request, response, disconnect) by `concurrency` workers for `durationMs`. */
export async function provisionRate(port: number, concurrency: number, durationMs: number): Promise<{ rate: number; failures: number }> {
  let done = 0;
  let failures = 0;
  let running = true;
  let seq = 0;
  const worker = async () => {
    while (running) {
      const name = `prov-${process.pid}-${seq++}`;
      try {
        const client = await BareClient.open(port, 'provision', name);
        const body = JSON.stringify({ deviceName: name, provisionDeviceKey: 'bench-key', provisionDeviceSecret: 'bench-secret' });
        const answer = await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no provision response')), 30_000);
          client.onPacket = (p) => {
            if (p.cmd === 'publish' && p.topic === '/provision/response') (clearTimeout(timer), resolve(p.payload.toString()));
          };
          client.send({ cmd: 'publish', topic: '/provision/request', payload: body, qos: 1, messageId: 1, retain: false, dup: false });
        });
        client.send({ cmd: 'disconnect' });
        client.socket.end();
        if (JSON.parse(answer).status === 'SUCCESS') done++;
        else failures++;
      } catch {
        failures++;
      }
    }
  };
  const t0 = process.hrtime.bigint();
  const workers = Array.from({ length: concurrency }, worker);
  await new Promise((r) => setTimeout(r, durationMs));
  running = false;
  await Promise.all(workers);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { rate: done / seconds, failures };
}
