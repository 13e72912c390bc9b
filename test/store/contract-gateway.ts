/**
 * Store contract for the gateway queries (issue 14): devices by many names, a gateway's sub-devices through
 * `additionalInfo.lastConnectedGateway` (kept in `device.gateway_id` on insert and update), and those with pending RPCs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Store } from '../../src/core/ports/store.ts';
import { credentials, device, OTHER_TENANT, rpc, seedDevice, unique } from './fixtures.ts';

export function gatewayContract(store: () => Store): void {
  test('gateway queries: devices by names, sub-devices counted, those with pending RPCs listed', async () => {
    const { profile, device: gateway } = await seedDevice(store(), { additionalInfo: { gateway: true } });
    const subs = Array.from({ length: 3 }, () => device(profile.id, { additionalInfo: { lastConnectedGateway: gateway.id } }));
    for (const d of subs) await store().insertDevice(d, credentials(d.id));
    const other = device(profile.id, { tenantId: OTHER_TENANT, name: subs[0].name });
    await store().insertDevice(other, credentials(other.id));

    const found = await store().findDevicesByNames(gateway.tenantId, [subs[0].name, subs[2].name, unique('missing')]);
    assert.deepEqual(found.map((d) => d.id).sort(), [subs[0].id, subs[2].id].sort(), 'exact names, this tenant only');
    assert.equal(await store().countSubDevices(gateway.id), 3);

    // An update that hands a device to another gateway moves it.
    await store().updateDevice({ ...subs[1], additionalInfo: { lastConnectedGateway: 'another-gateway' } });
    assert.equal(await store().countSubDevices(gateway.id), 2);
    assert.equal(await store().countSubDevices('another-gateway'), 1);

    const now = Date.now();
    await store().insertRpc(rpc(subs[0].id, { status: 'QUEUED' }));
    await store().insertRpc(rpc(subs[2].id, { status: 'SUCCESSFUL' }));
    await store().insertRpc(rpc(subs[2].id, { status: 'QUEUED', expirationTime: now - 1 }));
    const pending = await store().listSubDevicesWithPendingRpc(gateway.id, now);
    assert.deepEqual(pending.map((d) => d.id), [subs[0].id]);
  });
}
