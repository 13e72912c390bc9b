/** The console's device table: device infos with credentials type and provisioning, filtered by provision state. */
import type { DeviceActivityTracker } from './device-activity.ts';
import type { ConsoleDeviceQuery, ConsoleDeviceRow, Page } from './model.ts';
import type { Store } from './ports/store.ts';

/** A console device row with ThingsBoard's `active` flag. */
export type ActiveConsoleDeviceRow = ConsoleDeviceRow & { active: boolean };

export interface ConsoleDevicesApi {
  list(tenantId: string, query: Omit<ConsoleDeviceQuery, 'activeSince'>): Promise<Page<ActiveConsoleDeviceRow>>;
}

export class ConsoleDevices implements ConsoleDevicesApi {
  constructor(
    private readonly store: Store,
    private readonly activity: DeviceActivityTracker,
  ) {}

  async list(tenantId: string, query: Omit<ConsoleDeviceQuery, 'activeSince'>): Promise<Page<ActiveConsoleDeviceRow>> {
    const now = Date.now();
    const page = await this.store.listConsoleDevices(tenantId, { ...query, activeSince: this.activity.activeSince(now) });
    return { ...page, data: page.data.map((row) => ({ ...row, active: this.activity.isActive(row.activity.lastActivityTime, now) })) };
  }
}
