/**
 * The writes of ALLOW_CREATE_NEW_DEVICES provisioning (spec §6): device, credentials, the `provisionState` attribute,
 * the hook's grant and the audit row. Concurrent requests share one transaction (TransactionBatcher); this writer puts
 * the new devices of such a group in with a handful of multi-row statements instead of six or seven per device.
 * The unique indexes still decide every name and credentials race (DESIGN 7): a device whose name is taken goes
 * back to its own unit (DESIGN 3's lost-answer check or the reprovisionPolicy), one whose credentials are taken is
 * not kept and gets CREDENTIALS_IN_USE.
 */
import type { ProvisionResult } from '../api.ts';
import type { AuditRecorder, ProvisioningAuditEvent } from '../audit.ts';
import { parseMqttBasicValue } from '../credentials.ts';
import type { Device, DeviceCredentials, KvEntry } from '../model.ts';
import type { BulkOutcome, BulkWriter } from '../transaction-batcher.ts';
import { UniqueViolation, type Store } from '../ports/store.ts';
import { writeHookGrant, type HookGrant } from './pre-provisioning-hook.ts';

/** Value the spec writes to the SERVER_SCOPE `provisionState` attribute (spec §6). */
export const PROVISION_STATE_KEY = 'provisionState';
export const PROVISIONED = 'provisioned';
const PROVISION_STATE: KvEntry = { key: PROVISION_STATE_KEY, value: { type: 'STRING', value: PROVISIONED } };

/** One device to create: its rows, the hook's grant and its SUCCESS audit event (times are set when written). */
export interface NewDevice {
  device: Device;
  credentials: DeviceCredentials;
  grant: HookGrant | undefined;
  audit: ProvisioningAuditEvent;
}

/** spec §5.1: the SUCCESS reply for a device and its credentials. */
export function successOf(device: Device, creds: DeviceCredentials): ProvisionResult {
  const base = { status: 'SUCCESS' as const, credentialsType: creds.credentialsType, deviceId: device.id, deviceName: device.name };
  switch (creds.credentialsType) {
    case 'ACCESS_TOKEN':
      return { ...base, credentialsValue: creds.credentialsId }; // [TAPI]: ACCESS_TOKEN -> credentialsId
    case 'MQTT_BASIC':
      return { ...base, credentialsValue: parseMqttBasicValue(creds.credentialsValue) };
    case 'X509_CERTIFICATE':
      return { ...base, credentialsValue: creds.credentialsValue ?? '' };
    case 'LWM2M_CREDENTIALS':
      return base; // spec §5.1: no credentialsValue
  }
}

function stamp(n: NewDevice, now: number): void {
  n.device.createdTime = now;
  n.credentials.createdTime = now;
}

/** Creates one device alone (a unit of its own); throws UniqueViolation when its name or credentials are taken. */
export async function createDevice(tx: Store, n: NewDevice, audit: AuditRecorder): Promise<ProvisionResult> {
  const now = Date.now();
  stamp(n, now);
  await tx.insertDevice(n.device, n.credentials);
  await tx.insertAttributeIfAbsent(n.device.id, 'SERVER_SCOPE', PROVISION_STATE, now);
  await writeHookGrant(tx, n.device.id, n.grant, now);
  await audit.provisioning(tx, n.audit);
  return successOf(n.device, n.credentials);
}

/** Creates the new devices of a provisioning group together (TransactionBatcher's bulk writer). */
export class NewDeviceWriter implements BulkWriter<NewDevice, ProvisionResult> {
  constructor(private readonly audit: AuditRecorder) {}

  async write(tx: Store, items: NewDevice[]): Promise<BulkOutcome<ProvisionResult>[]> {
    const now = Date.now();
    for (const n of items) stamp(n, now);
    const inserted = await tx.insertDevicesIfAbsent(items.map((n) => ({ device: n.device, credentials: n.credentials })));
    const created = items.filter((_, i) => inserted[i] === 'created');
    if (created.length > 0) {
      await tx.insertAttributesIfAbsent(created.map((n) => ({ deviceId: n.device.id, scope: 'SERVER_SCOPE' as const, entry: PROVISION_STATE, ts: now })));
      for (const n of created) await writeHookGrant(tx, n.device.id, n.grant, now);
      await this.audit.provisioningMany(tx, created.map((n) => n.audit));
    }
    return items.map((n, i) => {
      switch (inserted[i]) {
        case 'created':
          return { ok: true, value: successOf(n.device, n.credentials) };
        case 'device_name':
          return 'single'; // DESIGN 3 / reprovisionPolicy: the unit looks at the device that has the name
        default:
          return { ok: false, error: new UniqueViolation('credentials_id') };
      }
    });
  }
}
