/**
 * The shared attributes and time series ThingsBoard writes for an assignment (spec thingsboard-ota §3.4-§3.6).
 */
import type { KvValue, TsPoint } from '../model.ts';
import { otaPrefix, type OtaPackage, type OtaType } from './model.ts';

/** §3.6: every key an unassignment deletes. */
export function removedKeys(type: OtaType): string[] {
  const p = otaPrefix(type);
  return ['title', 'version', 'ts', 'state', 'size', 'checksum', 'checksum_algorithm', 'url', 'tag'].map((k) => `${p}_${k}`);
}

/** §3.5 table: the attributes to write for a package, and those to delete (absent values, `url` of a data package). */
export function assignmentAttributes(pkg: OtaPackage): { values: Record<string, unknown>; deleted: string[] } {
  const p = otaPrefix(pkg.type);
  const values: Record<string, unknown> = { [`${p}_title`]: pkg.title, [`${p}_version`]: pkg.version };
  const deleted: string[] = [];
  const put = (key: string, value: unknown, present: boolean) => {
    if (present) values[`${p}_${key}`] = value;
    else deleted.push(`${p}_${key}`);
  };
  put('tag', pkg.tag, !!pkg.tag);
  const urlPackage = pkg.url !== null && pkg.blobId === null;
  put('size', pkg.dataSize, pkg.dataSize !== null);
  put('checksum_algorithm', pkg.checksumAlgorithm, pkg.checksumAlgorithm !== null);
  put('checksum', pkg.checksum, !!pkg.checksum);
  put('url', pkg.url, urlPackage);
  return { values, deleted };
}

const str = (value: string): KvValue => ({ type: 'STRING', value });

/** §3.4: the time series written when a device is queued (all at `ts`). */
export function queuedTelemetry(deviceId: string, pkg: OtaPackage, ts: number): TsPoint[] {
  const p = otaPrefix(pkg.type);
  const points: TsPoint[] = [
    { deviceId, ts, key: `target_${p}_title`, value: str(pkg.title) },
    { deviceId, ts, key: `target_${p}_version`, value: str(pkg.version) },
    { deviceId, ts, key: `target_${p}_ts`, value: { type: 'LONG', value: ts } },
    { deviceId, ts, key: `${p}_state`, value: str('QUEUED') },
  ];
  if (pkg.tag) points.push({ deviceId, ts, key: `target_${p}_tag`, value: str(pkg.tag) });
  return points;
}

/** §3.5 step 2: `fw_state` INITIATED when the attributes go out. */
export function initiatedTelemetry(deviceId: string, type: OtaType, ts: number): TsPoint[] {
  return [{ deviceId, ts, key: `${otaPrefix(type)}_state`, value: str('INITIATED') }];
}
