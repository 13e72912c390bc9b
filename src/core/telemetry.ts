import type { CommitListener, DeviceIdentity, TelemetryApi, TimeseriesReadApi } from './api.ts';
import type { CoreObserver } from './core-types.ts';
import type { CommittedHook, GroupCommitter } from './group-commit.ts';
import { parseAttributes } from './kv-json.ts';
import type { KvEntry, KvValue, TsPoint } from './model.ts';
import type { Store } from './ports/store.ts';
import { telemetryPoints } from './telemetry-json-bytes.ts';

const NO_POINTS: readonly TsPoint[] = [];

/** Device telemetry and client attributes in, stored time series out. */
export class Telemetry implements TelemetryApi, TimeseriesReadApi {
  /** Reports each committed telemetry message to the observer. */
  private readonly countCommitted: CommittedHook | undefined;

  constructor(
    private readonly store: Store,
    private readonly committer: GroupCommitter,
    observer?: CoreObserver,
  ) {
    if (observer) this.countCommitted = (points) => observer.telemetryCommitted?.(points);
  }

  /** Set by the exporter: remembers who a device is when its writes may be exported (issue 16). */
  noteExported: ((device: DeviceIdentity, kind: 'telemetry' | 'attributes') => void) | undefined;

  /** Resolves once the points are committed; rejects on a malformed payload (nothing queued) or a failed commit. */
  ingestJson(device: DeviceIdentity, json: string | Buffer): Promise<void> {
    let points: TsPoint[];
    try {
      points = telemetryPoints(json, device.deviceId, undefined);
    } catch (err) {
      return Promise.reject(err);
    }
    this.noteExported?.(device, 'telemetry');
    return this.committer.submit(points, undefined, this.countCommitted);
  }

  /** ingestJson telling `listener` (TelemetryApi.ingestJsonTo). */
  ingestJsonTo(device: DeviceIdentity, json: string | Buffer, listener: CommitListener, start?: number, end?: number): void {
    let points: TsPoint[];
    try {
      points = telemetryPoints(json, device.deviceId, undefined, start, end); // Date.now() only for items without a ts
    } catch (err) {
      this.committer.refuse(listener, err);
      return;
    }
    this.noteExported?.(device, 'telemetry');
    this.committer.submitTo(points, listener, this.countCommitted);
  }

  /** Resolves once the client attributes are committed; rejects on a malformed payload or a failed commit. */
  saveClientAttributesJson(device: DeviceIdentity, json: string | Buffer): Promise<void> {
    let entries: KvEntry[];
    try {
      entries = parseAttributes(json);
    } catch (err) {
      return Promise.reject(err);
    }
    this.noteExported?.(device, 'attributes');
    return this.committer.submit(NO_POINTS, [{ deviceId: device.deviceId, scope: 'CLIENT_SCOPE', entries, ts: Date.now() }]);
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
