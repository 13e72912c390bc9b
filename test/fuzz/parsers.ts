/**
 * Fuzz target: the provisioning and telemetry parsers in core (parseProvisionJson, parseTelemetry, parseAttributes,
 * and the protobuf provisioning decoder). Invariant: each input either parses or throws a FleetgateError of the
 * 400 class (DESIGN 5) — never anything else.
 */
import { FleetgateError } from '../../src/core/errors.ts';
import { parseAttributes, parseTelemetry } from '../../src/core/kv-json.ts';
import { decodeProvisionRequestProto, encodeProvisionRequestProto } from '../../src/core/provisioning/protobuf.ts';
import { parseProvisionJson } from '../../src/core/provisioning/request.ts';
import { CrashWatch } from './crash-watch.ts';
import { heapMb, type FuzzOptions, type FuzzReport } from './report.ts';
import { jsonInput, mutateMany, Rng } from './rng.ts';

/** Valid documents the mutations start from. */
export const JSON_SEEDS = [
  '{"deviceName":"d1","provisionDeviceKey":"k","provisionDeviceSecret":"s"}',
  '{"provisionDeviceKey":"k","provisionDeviceSecret":"s","credentialsType":"MQTT_BASIC","clientId":null,"username":"u","password":"p"}',
  '{"provisionDeviceKey":"k","provisionDeviceSecret":"s","credentialsType":"X509_CERTIFICATE","hash":"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----","gateway":"true"}',
  '{"temperature":21.5,"humidity":40,"on":true,"name":"x","big":12345678901234567890,"obj":{"a":[1,2]}}',
  '{"ts":1700000000000,"values":{"t":1,"s":"2"}}',
  '[{"ts":"1700000000001","values":{"t":1}},{"k":1.5e300},{"ts":1,"values":{}}]',
  '{"clientKeys":"a,b","sharedKeys":"c"}',
];

const ALLOWED = new Set(['MALFORMED_PAYLOAD', 'INVALID_ARGUMENT']);

function attempt(watch: CrashWatch, name: string, fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (err instanceof FleetgateError && ALLOWED.has(err.code)) return;
    watch.record('thrown', new Error(`${name}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`));
  }
}

/** Runs `inputs` inputs through every parser. */
export async function fuzzParsers(opts: FuzzOptions): Promise<FuzzReport> {
  const rng = new Rng(opts.seed);
  const watch = new CrashWatch('parsers');
  const heapBefore = heapMb();
  const protoSeed = encodeProvisionRequestProto({ provisionDeviceKey: 'k', provisionDeviceSecret: 's', deviceName: 'd', credentialsType: 'MQTT_BASIC', clientId: 'c', username: 'u', password: 'p', gateway: true });
  try {
    for (let i = 0; i < opts.inputs; i++) {
      const input = jsonInput(rng, JSON_SEEDS);
      watch.current = input;
      attempt(watch, 'parseProvisionJson', () => parseProvisionJson(input));
      attempt(watch, 'parseProvisionJson(text)', () => parseProvisionJson(input.toString('utf8')));
      attempt(watch, 'parseTelemetry', () => parseTelemetry(input, 1_700_000_000_000));
      attempt(watch, 'parseAttributes', () => parseAttributes(input));
      const proto = rng.chance(0.5) ? mutateMany(rng, protoSeed, 1 + rng.int(3)) : input;
      watch.current = proto;
      attempt(watch, 'decodeProvisionRequestProto', () => decodeProvisionRequestProto(proto));
      if (i % 1000 === 999) await new Promise((r) => setImmediate(r)); // let a stray rejection surface
    }
  } finally {
    watch.disarm();
  }
  return { target: 'parsers', seed: opts.seed, inputs: opts.inputs, crashes: watch.crashes, checks: 0, checksPassed: 0, heapGrowthMb: heapMb() - heapBefore };
}
