/**
 * Helpers of the cluster test: bounded polling, a tiny admin REST client for any node, HTTP provisioning as a device
 * does it, and MQTT.js devices that send numbered QoS 1 telemetry and remember which messages were PUBACKed.
 */
import { readResponse } from '../support/fixtures.ts';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

/** Polls `check` every `intervalMs` until it returns true; throws naming `what` after `attempts` tries. */
export async function until(what: string, check: () => boolean | Promise<boolean>, attempts = 200, intervalMs = 50): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`gave up waiting: ${what}`);
}

export interface ApiResponse {
  status: number;
  text: string;
  /** The body parsed as JSON, undefined when it is empty or not JSON. */
  json: any;
}

/** Admin REST calls against one node (`baseUrl`) with a JWT, which any node of the cluster accepts. */
export function adminApi(baseUrl: string, token: string) {
  return async (method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<ApiResponse> => {
    const headers: Record<string, string> = { 'x-authorization': `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return readResponse(res);
  };
}

/** The §5.1 provisioning reply (with fleetgate's `reason`, `deviceId`, `deviceName`). */
export interface ProvisionReply {
  status: 'SUCCESS' | 'NOT_FOUND' | 'FAILURE';
  credentialsValue?: string;
  deviceId?: string;
  reason?: string;
}

/** `POST /api/v1/provision` on one node, as a device does it; throws unless HTTP 200. */
export async function provisionOverHttp(baseUrl: string, body: { deviceName: string; provisionDeviceKey: string; provisionDeviceSecret: string }): Promise<ProvisionReply> {
  const res = await fetch(`${baseUrl}/api/v1/provision`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`provisioning answered ${res.status}: ${text}`);
  return JSON.parse(text) as ProvisionReply;
}

/** A device on MQTT.js sending `{"ts": base + seq, "values": {"seq": seq}}` at QoS 1 from a few concurrent loops. */
export interface TelemetryDevice {
  name: string;
  deviceId: string;
  client: MqttClient;
  /** Sequence numbers whose PUBLISH was acknowledged with a PUBACK (the MQTT.js callback succeeded). */
  acked: number[];
  /** Acknowledgements that arrived after `markKill()`: they came from the node the device reconnected to. */
  ackedAfterKill: number;
  /** Publishes that failed (rejected callback); they are simply not counted as acknowledged. */
  failed: number;
  /** From now on acknowledgements count towards `ackedAfterKill`. */
  markKill(): void;
  /** Stops sending and waits (bounded) for the loops to finish. */
  stop(): Promise<void>;
}

/** Connects a device and starts its sending loops; `options.servers` lists the nodes it tries, in order. */
export async function startTelemetryDevice(
  name: string,
  deviceId: string,
  base: number,
  options: IClientOptions,
  loops = 4,
  maxSeq = 50_000,
): Promise<TelemetryDevice> {
  const client = await mqtt.connectAsync({ connectTimeout: 5000, ...options });
  let next = 1;
  let stopped = false;
  let killed = false;
  const device: TelemetryDevice = {
    name,
    deviceId,
    client,
    acked: [],
    ackedAfterKill: 0,
    failed: 0,
    markKill: () => (killed = true),
    async stop() {
      stopped = true;
      // A loop waits for at most its one outstanding PUBACK, which the live node sends after its commit.
      const timeout = new Promise<'timeout'>((r) => setTimeout(r, 15_000, 'timeout').unref());
      if ((await Promise.race([Promise.all(running), timeout])) === 'timeout') throw new Error(`${name}: sending loops did not finish`);
    },
  };
  const loop = async () => {
    while (!stopped && !client.disconnecting && next <= maxSeq) {
      const seq = next++;
      try {
        await client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ ts: base + seq, values: { seq } }), { qos: 1 });
        device.acked.push(seq);
        if (killed) device.ackedAfterKill++;
      } catch {
        device.failed++;
      }
    }
  };
  const running = Array.from({ length: loops }, loop);
  return device;
}
