/** The devices the export benches (cpu.ts, stages.ts, ingest.ts) write for: `count` of one tenant and one profile. */
export function benchDevices(count: number) {
  return Array.from({ length: count }, (_, i) => ({
    deviceId: `0d1e2f30-4a5b-4c6d-8e9f-${String(i).padStart(12, '0')}`,
    deviceName: `bench-device-${i}`,
    tenantId: 'tenant',
    profileId: '7f000000-0000-4000-8000-000000000001',
    credentialsType: 'ACCESS_TOKEN' as const,
  }));
}
