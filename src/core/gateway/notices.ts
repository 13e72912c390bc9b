/**
 * gateway spec §4.9 ([TBCS], [GNS]): renaming or deleting a sub-device tells its gateway with a persisted one-way RPC on
 * the gateway's own RPC topic: `gateway_device_renamed` `{"<old>":"<new>"}` or `gateway_device_deleted` `"<name>"`,
 * kept 24 h, so a gateway that is away gets it when it comes back.
 */
import type { RpcApi } from '../api.ts';
import type { CoreLogger } from '../core-types.ts';
import type { Device } from '../model.ts';
import type { Store } from '../ports/store.ts';

const NOTICE_EXPIRY_MS = 24 * 60 * 60 * 1000;

/** What happened to a sub-device. */
export type SubDeviceChange = { kind: 'renamed'; from: string } | { kind: 'deleted' };

/** Builds the hook Devices calls after a device was renamed or deleted. */
export function gatewayNotices(store: Store, rpc: RpcApi, logger: CoreLogger): (device: Device, change: SubDeviceChange) => Promise<void> {
  return async (device, change) => {
    const gatewayId = device.additionalInfo?.lastConnectedGateway;
    if (typeof gatewayId !== 'string') return;
    const gateway = await store.getDeviceById(gatewayId);
    if (!gateway || gateway.tenantId !== device.tenantId) return;
    const notice =
      change.kind === 'renamed' ? { method: 'gateway_device_renamed', params: { [change.from]: device.name } } : { method: 'gateway_device_deleted', params: device.name };
    try {
      await rpc.submit(gateway, { ...notice, oneway: true, expirationTime: Date.now() + NOTICE_EXPIRY_MS });
    } catch (err) {
      logger.warn({ err, gatewayId, deviceId: device.id }, 'gateway notice could not be queued');
    }
  };
}
