/**
 * CPU per telemetry payload of the telemetry parser (telemetryPoints in src/core/telemetry-json-bytes.ts where a
 * checkout has it, else parseTelemetryPoints in src/core/kv-json.ts), the MQTT distinct-ts bench's payload
 * (`{"ts":<its own>,"values":{"temperature":21.5,"humidity":40}}`, a Buffer as MQTT hands it over), alternating with
 * another checkout's parser for an A/B in the same minutes (issue 17 item 4).
 *
 *   node --import tsx bench/core/parse-telemetry.ts [--base /abs/other-checkout] [--rounds 4] [--payloads 400000]
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { existsSync } from 'node:fs';
import * as current from '../../src/core/telemetry-json-bytes.ts';

const { values } = parseArgs({ options: { base: { type: 'string' }, rounds: { type: 'string', default: '4' }, payloads: { type: 'string', default: '400000' } } });
type Parser = typeof current.telemetryPoints;
const parsers: [string, Parser][] = [['this checkout', current.telemetryPoints]];
if (values.base) {
  const bytesReader = resolve(values.base, 'src/core/telemetry-json-bytes.ts');
  const base = existsSync(bytesReader) ? (await import(pathToFileURL(bytesReader).href)).telemetryPoints : (await import(pathToFileURL(resolve(values.base, 'src/core/kv-json.ts')).href)).parseTelemetryPoints;
  parsers.unshift(['base', base]);
}
const payloads = Array.from({ length: 1000 }, (_, i) => Buffer.from(`{"ts":${1_700_000_000_000 + i},"values":{"temperature":21.5,"humidity":40}}`));
const repeat = Math.ceil(Number(values.payloads) / payloads.length);
for (let round = 1; round <= Number(values.rounds); round++) {
  for (const [name, parse] of parsers) {
    let points = 0;
    const t0 = process.cpuUsage();
    for (let k = 0; k < repeat; k++) for (const p of payloads) points += parse(p, 'dev', 0).length;
    const d = process.cpuUsage(t0);
    if (points !== 2 * repeat * payloads.length) throw new Error(`${name}: ${points} points`);
    console.log(`round ${round} ${name}: ${(((d.user + d.system) * 1000) / (repeat * payloads.length)).toFixed(0)} ns CPU a payload`);
  }
}
