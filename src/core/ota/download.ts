/**
 * What a device may download (spec thingsboard-ota §4.0): the lookup every transport shares and the slicing rule.
 */
import type { OtaAssignments } from './assignments.ts';
import type { OtaPackage, OtaType } from './model.ts';
import type { Store } from '../ports/store.ts';

/** TB ResponseStatus of the core lookup. */
export type OtaLookup = { status: 'SUCCESS'; pkg: OtaPackage } | { status: 'NOT_FOUND' | 'FAILURE' | 'UNKNOWN' };

/** How long a lookup is reused for the same device and type (HTTP and CoAP ask once per chunk). */
const LOOKUP_CACHE_MS = 1000;

export class OtaDownloads {
  private readonly cache = new Map<string, { result: OtaLookup; expires: number }>();

  constructor(
    private readonly store: Store,
    private readonly assignments: OtaAssignments,
  ) {}

  /** §4.0: device gone -> UNKNOWN; nothing assigned or package gone -> NOT_FOUND; URL package -> FAILURE. */
  async lookup(deviceId: string, type: OtaType): Promise<OtaLookup> {
    const key = `${deviceId}|${type}`;
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && hit.expires > now) return hit.result;
    const result = await this.resolve(deviceId, type);
    if (this.cache.size >= 10_000) this.cache.clear();
    this.cache.set(key, { result, expires: now + LOOKUP_CACHE_MS });
    return result;
  }

  private async resolve(deviceId: string, type: OtaType): Promise<OtaLookup> {
    const device = await this.store.getDeviceById(deviceId);
    if (!device) return { status: 'UNKNOWN' };
    const id = await this.assignments.effective(device, type);
    if (!id) return { status: 'NOT_FOUND' };
    const pkg = await this.store.ota.getPackage(id);
    if (!pkg) return { status: 'NOT_FOUND' };
    if (pkg.blobId === null) return { status: pkg.url !== null ? 'FAILURE' : 'NOT_FOUND' };
    return { status: 'SUCCESS', pkg };
  }
}

/**
 * §4.0 slicing: `size` < 1 -> the whole package (chunk ignored); otherwise bytes `[size*chunk, size*chunk+size)`
 * clipped to the package; past the end -> empty. Returns `[start, end)`.
 */
export function sliceOf(length: number, size: number, chunk: number): [number, number] {
  if (size < 1) return [0, length];
  const start = size * chunk;
  if (start >= length) return [length, length];
  return [start, Math.min(length, start + size)];
}
