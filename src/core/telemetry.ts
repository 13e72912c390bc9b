import type { DeviceIdentity, TelemetryApi, TimeseriesReadApi } from './api.ts';
import type { CoreObserver } from './core-types.ts';
import type { GroupCommitter } from './group-commit.ts';
import { parseAttributes, parseTelemetry } from './kv-json.ts';
import type { KvValue, TsPoint } from './model.ts';
import type { Store } from '../store/store.ts';

/** Device telemetry and client attributes in, stored time series out. */
export class Telemetry implements TelemetryApi, TimeseriesReadApi {
  constructor(
    private readonly store: Store,
    private readonly committer: GroupCommitter,
    private readonly observer?: CoreObserver,
  ) {}

  async ingestJson(device: DeviceIdentity, json: string | Buffer): Promise<void> {
    const groups = parseTelemetry(json, Date.now());
    const points: TsPoint[] = [];
    for (const g of groups) for (const e of g.entries) points.push({ deviceId: device.deviceId, ts: g.ts, key: e.key, value: e.value });
    await this.committer.submit(points);
    this.observer?.telemetryCommitted?.(points.length);
  }

  async saveClientAttributesJson(device: DeviceIdentity, json: string | Buffer): Promise<void> {
    const entries = parseAttributes(json);
    await this.committer.submit([], [{ deviceId: device.deviceId, scope: 'CLIENT_SCOPE', entries, ts: Date.now() }]);
  }

  async get(
    deviceId: string,
    query: { keys: string[]; startTs: number; endTs: number; limit?: number; orderBy?: 'ASC' | 'DESC' },
  ): Promise<Record<string, { ts: number; value: KvValue }[]>> {
    const rows = await this.store.getTimeseries({
      deviceId,
      keys: query.keys,
      startTs: query.startTs,
      endTs: query.endTs,
      limit: query.limit ?? 100,
      orderBy: query.orderBy ?? 'DESC',
    });
    return Object.fromEntries(rows);
  }

  async latest(deviceId: string, keys?: string[]): Promise<Record<string, { ts: number; value: KvValue }[]>> {
    const rows = await this.store.getLatestTimeseries(deviceId, keys);
    return Object.fromEntries([...rows].map(([k, v]) => [k, [v]]));
  }

  keys(deviceId: string): Promise<string[]> {
    return this.store.listTimeseriesKeys(deviceId);
  }
}
