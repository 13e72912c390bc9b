/**
 * A server with a fast rollout, a profile, an uploaded package assigned to the profile, and devices: what the
 * download tests share.
 */
import { createHash, randomBytes } from 'node:crypto';
import { startTestServer, type TestServer } from '../support/harness.ts';
import { assignToProfile, createDevice, createPackage, createProfile, eventually, otaApi, uploadPackage, type Api } from '../support/ota.ts';

export interface OtaFixture {
  server: TestServer;
  api: Api;
  token: string;
  profileId: string;
  /** Package ids and bytes by type. */
  firmware: { id: string; data: Buffer; title: string; version: string };
  software: { id: string; data: Buffer; title: string; version: string };
}

export const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Starts a server (rollout: groups of 50 every 100 ms) with a firmware and a software package assigned to a profile. */
export async function otaFixture(name: string, sizes = { firmware: 200_000, software: 70_001 }): Promise<OtaFixture> {
  const server = await startTestServer({ otaRolloutGroupSize: 50, otaRolloutIntervalMs: 100 });
  const token = await server.adminToken();
  const api = otaApi(server.httpUrl, token);
  const profileId = await createProfile(api, `${name} profile`);
  const make = async (type: 'FIRMWARE' | 'SOFTWARE', size: number) => {
    const title = `${name}-${type.toLowerCase()}`;
    const version = '1.0.0';
    const id = await createPackage(api, profileId, title, version, type);
    const data = randomBytes(size);
    const up = await uploadPackage(server.httpUrl, token, id, data, { algorithm: 'SHA256', checksum: sha256(data), fileName: `${title}.bin` });
    if (up.status !== 200) throw new Error(`upload: ${up.status} ${up.text}`);
    const assigned = await assignToProfile(api, profileId, type, id);
    if (assigned.status !== 200) throw new Error(`assign: ${assigned.status} ${assigned.text}`);
    return { id, data, title, version };
  };
  const firmware = await make('FIRMWARE', sizes.firmware);
  const software = await make('SOFTWARE', sizes.software);
  return { server, api, token, profileId, firmware, software };
}

/** A device of the fixture's profile; resolves once the rollout wrote its fw_* and sw_* attributes. */
export async function otaDevice(f: OtaFixture, name: string): Promise<{ id: string; token: string }> {
  const token = `${name}-token`;
  const device = await createDevice(f.api, name, f.profileId, token);
  const id = device.id.id as string;
  await eventually(`${name} gets fw_* and sw_* attributes`, async () => {
    const res = await f.api('GET', `/api/plugins/telemetry/DEVICE/${id}/values/attributes/SHARED_SCOPE`);
    const keys = (res.json as { key: string }[]).map((a) => a.key);
    return keys.includes('fw_checksum') && keys.includes('sw_checksum');
  });
  return { id, token };
}

/** Latest telemetry values of a device. */
export async function latest(f: OtaFixture, deviceId: string, keys: string): Promise<Record<string, unknown>> {
  const res = await f.api('GET', `/api/plugins/telemetry/DEVICE/${deviceId}/values/timeseries?keys=${keys}`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(res.json as Record<string, { value: unknown }[]>)) out[k] = v[0]?.value;
  return out;
}
