/**
 * The fuzz targets with a short, fixed budget (issue 7 §3): the same seeds every run, so a failure here is
 * replayable with `npm run fuzz -- --seed <seed> --target <name>`. Longer runs: `npm run fuzz`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fuzzCoap } from './coap.ts';
import { fuzzMqtt } from './mqtt.ts';
import { fuzzParsers } from './parsers.ts';
import type { FuzzReport } from './report.ts';

/** Generous bound on heap growth over a short run: a leak per input would exceed it, noise will not. */
const MAX_HEAP_GROWTH_MB = 150;

function assertClean(report: FuzzReport): void {
  assert.deepEqual(report.crashes, [], `target ${report.target}, seed ${report.seed}`);
  assert.equal(report.checksPassed, report.checks, 'every valid request after fuzz input worked');
  assert.ok(report.heapGrowthMb < MAX_HEAP_GROWTH_MB, `heap grew ${report.heapGrowthMb.toFixed(1)} MB`);
}

describe('fuzzing (short, seeded)', () => {
  it('provisioning/telemetry/attribute parsers only ever throw 400-class errors', async () => {
    assertClean(await fuzzParsers({ seed: 7001, inputs: 5000 }));
  });

  it('the MQTT state machine survives random and mutated sessions, and a valid session still works', async () => {
    const report = await fuzzMqtt({ seed: 7002, inputs: 800, checkEvery: 200 });
    assertClean(report);
    assert.equal(report.checks, 5);
  });

  it('the CoAP transport survives random and mutated datagrams, and a valid request still works', async () => {
    const report = await fuzzCoap({ seed: 7003, inputs: 1500, checkEvery: 500 });
    assertClean(report);
    assert.ok((report.units ?? 0) > 0, 'the server answered some of the datagrams');
  });
});
