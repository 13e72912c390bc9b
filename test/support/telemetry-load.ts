/**
 * HTTP telemetry load for the kill and shutdown tests: numbered points (`ts` = sequence number) sent by concurrent
 * workers, the acknowledged ones remembered, and a check afterwards that each of them is stored.
 */

/** Creates a device with access token `token` through the admin API; returns its id. */
export async function createTokenDevice(httpUrl: string, adminToken: string, token: string, name: string): Promise<string> {
  const res = await fetch(`${httpUrl}/api/device?accessToken=${token}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-authorization': `Bearer ${adminToken}` },
    body: JSON.stringify({ name }),
  });
  if (res.status !== 200) throw new Error(`device create failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: { id: string } }).id.id;
}

export interface TelemetryLoad {
  /** The sequence numbers answered 200, i.e. committed. */
  acknowledged: number[];
  /** Resolves once at least `count` points are acknowledged (or the sequence ran out). */
  untilAcknowledged(count: number): Promise<void>;
  /** From now on a worker ends at its first non-200 answer or failed request (the server is stopping or gone). */
  stop(): void;
  /** Resolves when every worker has ended. */
  finished: Promise<void>;
}

/** Starts `workers` loops posting `{"ts":n,"values":{"seq":n}}` for n = 1..max with the device token. */
export function startTelemetryLoad(httpUrl: string, deviceToken: string, max: number, workers = 16): TelemetryLoad {
  const acknowledged: number[] = [];
  let next = 1;
  let stopped = false;
  const worker = async () => {
    while (next <= max) {
      const ts = next++;
      try {
        const res = await fetch(`${httpUrl}/api/v1/${deviceToken}/telemetry`, { method: 'POST', body: JSON.stringify({ ts, values: { seq: ts } }) });
        if (res.status === 200) acknowledged.push(ts);
        else if (stopped) return;
      } catch {
        return; // the server is gone or stopped accepting
      }
    }
  };
  const finished = Promise.all(Array.from({ length: workers }, worker)).then(() => {});
  return {
    acknowledged,
    async untilAcknowledged(count) {
      while (acknowledged.length < count && next <= max) await new Promise((r) => setTimeout(r, 5));
    },
    stop() {
      stopped = true;
    },
    finished,
  };
}

/** The acknowledged sequence numbers that the server (read through its admin API) does not have. */
export async function lostPoints(httpUrl: string, adminToken: string, deviceId: string, acknowledged: number[], max: number): Promise<number[]> {
  const res = await fetch(`${httpUrl}/api/plugins/telemetry/DEVICE/${deviceId}/values/timeseries?keys=seq&startTs=0&endTs=${max + 1}&limit=${max}`, {
    headers: { 'x-authorization': `Bearer ${adminToken}` },
  });
  if (res.status !== 200) throw new Error(`timeseries read failed: ${res.status}`);
  const body = (await res.json()) as { seq?: { ts: number }[] };
  const stored = new Set((body.seq ?? []).map((p) => p.ts));
  return acknowledged.filter((ts) => !stored.has(ts));
}
