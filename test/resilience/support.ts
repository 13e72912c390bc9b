/**
 * Shared parts of the outage tests (issue 18): an MQTT QoS 1 telemetry load that resends what was not acknowledged,
 * health polling, and the check that every acknowledged message is stored exactly once.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { ServerProcess } from '../support/process-server.ts';

/** What /healthz answered. */
export interface Health {
  status: number;
  body: { status?: string; checks?: Record<string, string>; reasons?: Record<string, string> };
}

export async function health(httpUrl: string): Promise<Health> {
  try {
    const res = await fetch(`${httpUrl}/healthz`, { signal: AbortSignal.timeout(10_000) });
    return { status: res.status, body: (await res.json()) as Health['body'] };
  } catch (err) {
    return { status: 0, body: { status: `unreachable: ${(err as Error).message}` } };
  }
}

/** Polls `check` every 100 ms until it returns a value (not undefined); throws after `ms` (generous by default). */
export async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Polls /healthz until `part` is DOWN (503); returns the body. With `otherUp`, until the other part is UP in the same
 * answer, and with `reason`, until the part's reason matches it (on a busy machine a probe can miss its 2 s deadline
 * now and then, and its reason is then the timeout, so one answer proves nothing).
 */
export function untilDown(server: ServerProcess, part: 'database' | 'bus', options: { otherUp?: boolean; reason?: RegExp } = {}): Promise<Health['body']> {
  const other = part === 'database' ? 'bus' : 'database';
  return until(`${part} DOWN${options.otherUp ? ` and ${other} UP` : ''}`, async () => {
    assertRunning(server);
    const h = await health(server.httpUrl);
    if (h.status !== 503 || h.body.checks?.[part] !== 'DOWN') return undefined;
    if (options.reason && !options.reason.test(h.body.reasons?.[part] ?? '')) return undefined;
    return !options.otherUp || h.body.checks?.[other] === 'UP' ? h.body : undefined;
  });
}

/** Polls /healthz until it answers 200 UP; resolves with Date.now() then. */
export function untilUp(server: ServerProcess): Promise<number> {
  return until('health UP', async () => {
    assertRunning(server);
    return (await health(server.httpUrl)).status === 200 ? Date.now() : undefined;
  });
}

/** Throws at once when the server process has exited (the defect of issue 18), rather than waiting for a timeout. */
export function assertRunning(server: ServerProcess): void {
  const code = exitCode(server);
  if (code !== undefined) throw new Error(`the server exited (code ${code}):\n${server.stderr().slice(-2000)}\n${server.stdout().slice(-3000)}`);
}

/** An MQTT QoS 1 telemetry load: numbered messages, each resent until acknowledged. */
export interface MqttLoad {
  /** Sequence number -> Date.now() when its PUBACK (success) came. */
  acked: Map<number, number>;
  /** PUBACKs with an error reason (MQTT 5) and connections lost (MQTT 3.1.1) seen so far. */
  refusals: { pubackErrors: number; reasonCodes: Set<number>; disconnects: number };
  /** Resolves once a message is acknowledged after `since` (Date.now()); with the time of that ack. */
  ackAfter(since: number, ms?: number): Promise<number>;
  /** Stops sending; resolves when every message sent so far is acknowledged or given up after `ms`. */
  stop(ms?: number): Promise<void>;
  clients: MqttClient[];
}

/**
 * Starts `clients` MQTT clients (alternating MQTT 5 and 3.1.1) with the device token, each keeping `inflight`
 * messages in flight: `{"ts": n, "values": {"seq": n}}` (the sequence number is the timestamp, so a message stored
 * twice would still be one row and a row per acknowledged number proves nothing was lost). An MQTT 5 PUBACK with an
 * error reason is resent after 200 ms; on MQTT 3.1.1 the client resends unacknowledged messages when it reconnects.
 * `padBytes` adds a string value of that size to each message (to fill a disk).
 */
export function startMqttLoad(mqttPort: number, token: string, clients = 4, inflight = 8, padBytes = 0): MqttLoad {
  const pad = padBytes > 0 ? 'p'.repeat(padBytes) : undefined;
  const acked = new Map<number, number>();
  const refusals = { pubackErrors: 0, reasonCodes: new Set<number>(), disconnects: 0 };
  let next = 1;
  let stopped = false;
  const pending = new Set<number>();
  const list: MqttClient[] = [];
  for (let i = 0; i < clients; i++) {
    const version = i % 2 === 0 ? 5 : 4;
    const client = mqtt.connect(`mqtt://127.0.0.1:${mqttPort}`, {
      username: token,
      protocolVersion: version,
      clientId: `load-${i}-${process.pid}`,
      reconnectPeriod: 300,
      connectTimeout: 10_000,
      clean: true,
      resubscribe: false,
      reconnectOnConnackError: true, // CONNACK 3 (server unavailable) while the database is down: try again
    });
    client.on('error', () => {}); // CONNACK refusals while the database is down: the client reconnects
    client.on('close', () => refusals.disconnects++);
    list.push(client);
    const send = (seq: number) => {
      if (stopped && !pending.has(seq)) return;
      pending.add(seq);
      client.publish('v1/devices/me/telemetry', JSON.stringify({ ts: seq, values: pad ? { seq, pad } : { seq } }), { qos: 1 }, (err, packet) => {
        if (err) {
          const code = (err as { code?: number }).code ?? (packet as { reasonCode?: number } | undefined)?.reasonCode;
          if (typeof code === 'number') refusals.reasonCodes.add(code);
          refusals.pubackErrors++;
          setTimeout(() => send(seq), 200).unref(); // "not now": send it again
          return;
        }
        pending.delete(seq);
        acked.set(seq, Date.now());
        if (!stopped) send(next++);
      });
    };
    client.once('connect', () => {
      for (let k = 0; k < inflight; k++) send(next++);
    });
  }
  return {
    acked,
    refusals,
    clients: list,
    ackAfter(since, ms = 60_000) {
      return until('an acknowledgement after the return', () => {
        let first: number | undefined;
        for (const t of acked.values()) if (t > since && (first === undefined || t < first)) first = t;
        return first;
      }, ms);
    },
    async stop(ms = 30_000) {
      stopped = true;
      await until('every message in flight acknowledged', () => (pending.size === 0 ? true : undefined), ms).catch(() => {});
      await Promise.all(list.map((c) => c.endAsync(true).catch(() => {})));
    },
  };
}

/**
 * The acknowledged sequence numbers that are not stored exactly once with their value (read through the admin API);
 * empty when all are.
 */
export async function notStoredOnce(httpUrl: string, adminToken: string, deviceId: string, acked: Iterable<number>, max: number): Promise<number[]> {
  const res = await fetch(`${httpUrl}/api/plugins/telemetry/DEVICE/${deviceId}/values/timeseries?keys=seq&startTs=0&endTs=${max + 1}&limit=${max + 10}`, {
    headers: { 'x-authorization': `Bearer ${adminToken}` },
  });
  if (res.status !== 200) throw new Error(`timeseries read failed: ${res.status}`);
  const body = (await res.json()) as { seq?: { ts: number; value: string | number }[] };
  const rows = new Map<number, number>();
  for (const p of body.seq ?? []) {
    if (Number(p.value) === p.ts) rows.set(p.ts, (rows.get(p.ts) ?? 0) + 1);
  }
  return [...acked].filter((seq) => rows.get(seq) !== 1);
}

/** The child's exit code if it exited, else undefined (the test asserts it stays undefined). */
export function exitCode(server: ServerProcess): number | null | undefined {
  return server.child.exitCode !== null || server.child.signalCode !== null ? server.child.exitCode : undefined;
}
