/**
 * Fuzz target: the CoAP transport on 127.0.0.1 (a real UDP socket, node-coap behind the transport's intake) over a
 * real core. Inputs are datagrams: valid requests for every route (provisioning, telemetry, attributes with Observe,
 * RPC, Block1 transfers), mutated copies of them, and random bytes. Invariants: no uncaught exception or unhandled
 * rejection, no internal error logged, and a valid request still gets 2.01 between and after the inputs.
 */
import { generate, type OptionName } from 'coap-packet';
import { loadConfig } from '../../src/config.ts';
import { DEFAULT_TENANT_ID } from '../../src/core/model.ts';
import { startCoapTransport } from '../../src/transports/coap/index.ts';
import { createTestCore } from '../support/core.ts';
import { TEST_ACTOR } from '../support/harness.ts';
import { coapRequest, RawClient } from '../transports/coap/support.ts';
import { CrashWatch } from './crash-watch.ts';
import { JSON_SEEDS } from './parsers.ts';
import { heapMb, type FuzzOptions, type FuzzReport } from './report.ts';
import { jsonInput, mutateMany, Rng } from './rng.ts';

const PATHS = [
  ['api', 'v1', 'provision'],
  ['api', 'v1', 'fuzz-token', 'telemetry'],
  ['api', 'v1', 'fuzz-token', 'attributes'],
  ['api', 'v1', 'fuzz-token', 'rpc'],
  ['api', 'v1', 'fuzz-token', 'rpc', '5'],
  ['api', 'v1', 'wrong-token', 'telemetry'],
  ['api', 'v1', 'fuzz-token', 'claim'],
  ['api', 'v1'],
  ['x'],
  [],
];

function validDatagram(rng: Rng): Buffer {
  const options: { name: OptionName; value: Buffer }[] = rng.pick(PATHS).map((segment) => ({ name: 'Uri-Path', value: Buffer.from(segment) }));
  if (rng.chance(0.3)) options.push({ name: 'Observe', value: Buffer.from([rng.pick([0, 1])]) });
  if (rng.chance(0.2)) options.push({ name: 'Block1', value: Buffer.from([(rng.int(4) << 4) | (rng.chance(0.5) ? 0x08 : 0) | rng.int(7)]) });
  if (rng.chance(0.2)) options.push({ name: 'Content-Format', value: Buffer.from([rng.pick([0, 42, 50])]) });
  if (rng.chance(0.2)) options.push({ name: 'Uri-Query', value: Buffer.from(rng.pick(['clientKeys=a,b', 'sharedKeys=', 'timeout=1'])) });
  try {
    return generate({
      messageId: rng.int(65536),
      token: rng.bytes(rng.int(9)),
      code: rng.pick(['0.01', '0.02', '0.03', '0.04', '0.05', '2.05', '0.00']),
      confirmable: rng.chance(0.5),
      reset: rng.chance(0.03),
      ack: rng.chance(0.03),
      options,
      payload: rng.chance(0.7) ? jsonInput(rng, JSON_SEEDS) : Buffer.alloc(0),
    });
  } catch {
    return rng.bytes(4 + rng.int(32));
  }
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Sends `inputs` datagrams; checks a valid request every `checkEvery` datagrams and at the end. */
export async function fuzzCoap(opts: FuzzOptions & { checkEvery?: number }): Promise<FuzzReport> {
  const rng = new Rng(opts.seed);
  const t = await createTestCore();
  const profile = await t.core.profiles.save(DEFAULT_TENANT_ID, { name: 'fuzz', provisionType: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceKey: 'k', profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: 's' } } }, TEST_ACTOR);
  await t.core.devices.save(DEFAULT_TENANT_ID, { name: 'fuzz-device', deviceProfileId: profile.id }, TEST_ACTOR, 'fuzz-token');
  const watch = new CrashWatch('coap');
  const internal: unknown[] = [];
  const logger = { info() {}, warn() {}, debug() {}, error: (obj: object) => internal.push(obj) };
  const transport = await startCoapTransport({ core: t.core, config: { ...loadConfig({ env: {} }), host: '127.0.0.1' }, logger, host: '127.0.0.1', port: 0, options: { drainTimeoutMs: 1000, piggybackReplyMs: 50, observe: { nonObserverTtlMs: 1000 } } });
  const raw = await new RawClient().open();
  let answers = 0;
  raw.sock.on('message', () => answers++); // answers are counted and dropped
  const heapBefore = heapMb();
  let checks = 0;
  let checksPassed = 0;
  const check = async () => {
    checks++;
    t.core.throttle.clear(); // fuzz datagrams fail authentication on purpose
    try {
      const answer = await coapRequest(transport.port, '/api/v1/fuzz-token/telemetry', { payload: `{"check":${checks}}` });
      if (answer.code === '2.01') checksPassed++;
      else watch.record('invariant', new Error(`valid telemetry answered ${answer.code}`));
    } catch (err) {
      watch.record('invariant', err);
    }
  };
  try {
    let donor = validDatagram(rng);
    for (let i = 0; i < opts.inputs; i++) {
      const valid = validDatagram(rng);
      const roll = rng.int(10);
      const datagram = roll < 3 ? valid : roll < 9 ? mutateMany(rng, valid, 1 + rng.int(4), donor) : rng.bytes(rng.int(80));
      donor = valid;
      watch.current = datagram;
      raw.send(transport.port, datagram);
      if (i % 16 === 15) await new Promise((r) => setTimeout(r, 1)); // pace so the kernel does not drop most of them
      else await turn();
      if (opts.checkEvery && i % opts.checkEvery === opts.checkEvery - 1) await check();
    }
    await new Promise((r) => setTimeout(r, 100)); // let the last datagrams be handled (not an assertion)
    await check();
    for (const err of internal) watch.record('invariant', new Error(`internal error logged: ${JSON.stringify(err, (_k, v) => (v instanceof Error ? v.stack : v)).slice(0, 400)}`), null);
  } finally {
    watch.disarm();
    await raw.close();
    await transport.close();
    await t.close();
  }
  return { target: 'coap', seed: opts.seed, inputs: opts.inputs, units: answers, crashes: watch.crashes, checks, checksPassed, heapGrowthMb: heapMb() - heapBefore };
}
