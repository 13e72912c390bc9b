import type { AttributesApi } from './api.ts';
import { FleetgateError, isDependencyUnavailable, type DependencyUnavailableError } from './errors.ts';
import { kvToJson, objectToEntries } from './kv-json.ts';
import type { AttributeEntry, AttributeScope, Device, KvEntry } from './model.ts';
import { channels, type Bus } from './ports/bus.ts';
import type { Store } from './ports/store.ts';
import type { LiveUpdates } from './live-updates.ts';

function toObject(entries: AttributeEntry[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const e of entries) out[e.key] = kvToJson(e.value);
  return out;
}

/** Attributes by scope; SHARED_SCOPE changes are pushed to the device (spec §8.2). */
export class Attributes implements AttributesApi {
  /**
   * @param onBusDown called when a change was saved but the bus is down: the request still succeeds, and the change
   *   reaches the device when the bus is back (sessions re-send shared attributes changed during the outage).
   */
  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly live?: LiveUpdates,
    private readonly onBusDown: (err: DependencyUnavailableError) => void = () => {},
  ) {}

  /** Publishes a change that is already saved; a bus outage does not fail the request (see the constructor). */
  private async push(deviceId: string, update: Record<string, unknown>): Promise<void> {
    try {
      await this.bus.publish(channels.device(deviceId), { kind: 'attributes', deviceId, update });
    } catch (err) {
      if (!isDependencyUnavailable(err)) throw err;
      this.onBusDown(err);
    }
  }

  /**
   * spec §8.2 attribute request: no keys at all -> every client and shared attribute; otherwise only the keys
   * listed per scope. Empty parts are omitted.
   */
  async getForDevice(deviceId: string, clientKeys?: string[], sharedKeys?: string[]) {
    const all = clientKeys === undefined && sharedKeys === undefined;
    const out: { client?: Record<string, unknown>; shared?: Record<string, unknown> } = {};
    if (all || clientKeys) {
      const client = await this.store.getAttributes(deviceId, 'CLIENT_SCOPE', all ? undefined : clientKeys);
      if (client.length > 0) out.client = toObject(client);
    }
    if (all || sharedKeys) {
      const shared = await this.store.getAttributes(deviceId, 'SHARED_SCOPE', all ? undefined : sharedKeys);
      if (shared.length > 0) out.shared = toObject(shared);
    }
    return out;
  }

  get(deviceId: string, scope: AttributeScope, keys?: string[]): Promise<AttributeEntry[]> {
    return this.store.getAttributes(deviceId, scope, keys);
  }

  async save(device: Device, scope: AttributeScope, values: Record<string, unknown>): Promise<void> {
    if (values === null || typeof values !== 'object' || Array.isArray(values)) throw new FleetgateError('INVALID_ARGUMENT', 'Attributes must be a JSON object');
    return this.saveEntries(device, scope, objectToEntries(values, false));
  }

  /** Writes typed entries (e.g. CSV cells typed by the bulk import); SHARED_SCOPE changes are pushed like `save`. */
  async saveEntries(device: Device, scope: AttributeScope, entries: KvEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const ts = Date.now();
    await this.store.saveAttributes({ deviceId: device.id, scope, entries, ts });
    this.live?.attributesSaved(device.id, scope, entries, ts);
    if (scope === 'SHARED_SCOPE') {
      const update: Record<string, unknown> = {};
      for (const e of entries) update[e.key] = kvToJson(e.value);
      await this.push(device.id, update);
    }
  }

  async delete(device: Device, scope: AttributeScope, keys: string[]): Promise<void> {
    const deleted = await this.store.deleteAttributes(device.id, scope, keys);
    this.live?.attributesDeleted(device.id, scope, deleted, Date.now());
    if (scope === 'SHARED_SCOPE' && deleted.length > 0) {
      await this.push(device.id, { deleted });
    }
  }
}
