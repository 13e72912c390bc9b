import { telemetryPointsFromBytes } from '../../src/core/telemetry-json-bytes.ts';
const payloads = Array.from({ length: 1000 }, (_, i) => Buffer.from(`{"ts":${1_700_000_000_000 + i},"values":{"temperature":21.5,"humidity":40}}`));
for (let round = 0; round < 5; round++) {
  let n = 0;
  const t0 = process.cpuUsage();
  for (let k = 0; k < 1000; k++) for (const p of payloads) n += telemetryPointsFromBytes(p, 'dev', 0)!.length;
  const d = process.cpuUsage(t0);
  console.log(`${(((d.user + d.system) * 1000) / 1e6).toFixed(0)} ns`);
}
