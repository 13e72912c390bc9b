/** Finding a device or profile by name or id through the admin API, and paging through lists. */
import type { AdminClient } from './api-client.ts';
import { CliError } from './errors.ts';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** ThingsBoard JSON of an entity: what the CLI reads of it. */
export type EntityJson = Record<string, unknown> & { id: { id: string }; name: string };

interface PageJson<T> {
  data: T[];
  hasNext: boolean;
}

/** Pages through a list endpoint until `limit` items or the end; bounded by `limit`. */
export async function fetchAll<T>(client: AdminClient, path: string, query: Record<string, string | number | undefined>, limit: number): Promise<T[]> {
  const out: T[] = [];
  const pageSize = Math.min(1000, Math.max(1, limit));
  for (let page = 0; out.length < limit; page++) {
    const res = await client.call<PageJson<T>>('GET', path, { query: { ...query, pageSize, page } });
    out.push(...res.data.slice(0, limit - out.length));
    if (!res.hasNext || res.data.length === 0) break;
  }
  return out;
}

/** A device profile by id or exact name. */
export async function findProfile(client: AdminClient, ref: string): Promise<EntityJson> {
  if (UUID_RE.test(ref)) return client.call<EntityJson>('GET', `/api/deviceProfile/${ref}`);
  const matches = await fetchAll<EntityJson>(client, '/api/deviceProfiles', { textSearch: ref }, 10_000);
  const found = matches.find((p) => p.name === ref);
  if (!found) throw new CliError(`no device profile named "${ref}"`);
  return found;
}

/** A device by id or exact name. */
export async function findDevice(client: AdminClient, ref: string): Promise<EntityJson> {
  if (UUID_RE.test(ref)) return client.call<EntityJson>('GET', `/api/device/${ref}`);
  return client.call<EntityJson>('GET', '/api/tenant/devices', { query: { deviceName: ref } });
}
