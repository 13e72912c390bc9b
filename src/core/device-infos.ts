/** ThingsBoard's DeviceInfo reads: devices with their profile name and `active` flag, and the device types. */
import type { ActiveDeviceInfo, DeviceInfosApi } from './api.ts';
import type { DeviceActivityTracker } from './device-activity.ts';
import { notFound } from './errors.ts';
import type { DeviceInfo, Page, PageQuery } from './model.ts';
import type { Store } from './ports/store.ts';

export class DeviceInfos implements DeviceInfosApi {
  constructor(
    private readonly store: Store,
    private readonly activity: DeviceActivityTracker,
  ) {}

  private withActive(info: DeviceInfo, now: number): ActiveDeviceInfo {
    return { ...info, active: this.activity.isActive(info.activity.lastActivityTime, now) };
  }

  async list(tenantId: string, query: PageQuery & { profileId?: string; active?: boolean }): Promise<Page<ActiveDeviceInfo>> {
    const now = Date.now();
    const page = await this.store.listDeviceInfos(tenantId, { ...query, activeSince: this.activity.activeSince(now) });
    return { ...page, data: page.data.map((info) => this.withActive(info, now)) };
  }

  async get(tenantId: string, id: string): Promise<ActiveDeviceInfo> {
    const info = await this.store.getDeviceInfo(tenantId, id);
    if (!info) throw notFound(`Device with id [${id}] is not found`);
    return this.withActive(info, Date.now());
  }

  types(tenantId: string): Promise<string[]> {
    return this.store.listDeviceTypes(tenantId);
  }

  flushActivity(): Promise<void> {
    return this.activity.flush();
  }
}
