/**
 * Time series as ThingsBoard's TelemetryController serves them to users (spec §4): history reads, raw or aggregated
 * by the database; deletion; writes by the server (through the same group commit as device telemetry, so they are
 * committed before the 200); key lists per profile. Writes and deletions are audited (TIMESERIES_UPDATED / _DELETED).
 */
import type { Actor, TelemetryApi } from './api.ts';
import type { AuditRecorder } from './audit.ts';
import type { Device, KvValue } from './model.ts';
import { bucketTs, bucketValue, buildBuckets, type Aggregation, type IntervalType } from './timeseries-aggregate.ts';
import type { Store } from './ports/store.ts';
import type { LiveUpdates } from './live-updates.ts';

/** A history read (TB getTimeseries with startTs and endTs); the range is [startTs, endTs). */
export interface HistoryQuery {
  keys: string[];
  startTs: number;
  endTs: number;
  agg: Aggregation;
  intervalType: IntervalType;
  interval: number;
  timeZone: string;
  limit: number;
  orderBy: 'ASC' | 'DESC';
}

export type Series = Record<string, { ts: number; value: KvValue }[]>;

export class TimeseriesAdmin {
  constructor(
    private readonly store: Store,
    private readonly telemetry: TelemetryApi,
    private readonly audit: AuditRecorder,
    /** WebSocket subscribers of a key whose latest value was deleted get its new latest value (or its deletion). */
    private readonly live?: LiveUpdates,
  ) {}

  /** spec §4.1: raw when agg is NONE or a millisecond interval of 0, else buckets computed by the database. */
  async history(deviceId: string, q: HistoryQuery): Promise<Series> {
    if (q.keys.length === 0) return {};
    const raw = q.agg === 'NONE' || (q.intervalType === 'MILLISECONDS' && q.interval === 0);
    if (raw) {
      if (q.endTs <= q.startTs) return {};
      // The store's range is inclusive; TB's end is exclusive.
      const rows = await this.store.getTimeseries({ deviceId, keys: q.keys, startTs: q.startTs, endTs: q.endTs - 1, limit: q.limit, orderBy: q.orderBy });
      return Object.fromEntries(rows);
    }
    const buckets = buildBuckets(q.startTs, q.endTs, q.intervalType, q.interval, q.timeZone);
    const computed = await this.store.aggregateTimeseries({ deviceId, keys: q.keys, buckets });
    const out: Series = {};
    for (const key of q.keys) {
      const points = (computed.get(key) ?? []).flatMap((b) => {
        const value = bucketValue(q.agg as Exclude<Aggregation, 'NONE'>, b);
        return value ? [{ ts: bucketTs(b), value }] : [];
      });
      if (points.length > 0) out[key] = points;
    }
    return out;
  }

  /** spec §4.3: deletes [startTs, endTs) of the keys (and the latest value in it when asked). */
  async delete(device: Device, del: { keys: string[]; startTs: number; endTs: number; deleteLatest: boolean; rewriteLatest: boolean }, actor: Actor): Promise<void> {
    await this.store.deleteTimeseries({ deviceId: device.id, ...del });
    if (this.live && del.deleteLatest) {
      const latest = await this.store.getLatestTimeseries(device.id, del.keys);
      this.live.telemetryDeleted(device.id, del.keys.map((key) => ({ key, now: latest.get(key) ?? null })));
    }
    await this.audit.action(actor, device.tenantId, { type: 'DEVICE', id: device.id, name: device.name }, 'TIMESERIES_DELETED', {
      keys: del.keys,
      startTs: del.startTs,
      endTs: del.endTs,
    });
  }

  /** spec §4.4: a server-side write, committed through the group commit like device telemetry. */
  async save(device: Device, credentialsType: Parameters<TelemetryApi['ingestJson']>[0]['credentialsType'], json: string, actor: Actor): Promise<void> {
    await this.telemetry.ingestJson({ deviceId: device.id, tenantId: device.tenantId, deviceName: device.name, profileId: device.profileId, credentialsType }, json);
    await this.audit.action(actor, device.tenantId, { type: 'DEVICE', id: device.id, name: device.name }, 'TIMESERIES_UPDATED');
  }

  /** spec §3: distinct time-series or attribute keys of up to 100 devices of the profile (or tenant). */
  profileKeys(tenantId: string, profileId: string | undefined, kind: 'timeseries' | 'attributes'): Promise<string[]> {
    return this.store.listDeviceKeys(tenantId, profileId, kind);
  }
}
