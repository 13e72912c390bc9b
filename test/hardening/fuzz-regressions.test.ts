/**
 * Inputs the fuzzer found (bench/RESULTS.md "Fuzzing"), kept as regression tests against the real CoAP transport.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { coapRequest, device, provisionProfile, RawClient, startCoap, type CoapFixture } from '../transports/coap/support.ts';

describe('CoAP inputs found by fuzzing', () => {
  let t: CoapFixture;
  let raw: RawClient;
  before(async () => {
    t = await startCoap();
    const profile = await provisionProfile(t, 'fz', 'ALLOW_CREATE_NEW_DEVICES');
    await device(t, 'fz-device', profile.id, 'fz-token');
    raw = await new RawClient().open();
  });
  after(async () => {
    await raw.close();
    await t.close();
  });

  it('an ACK with a 10-byte Block2 option is ignored as a format error (RFC 7252 §4.1), not an internal error', async () => {
    // ver 1, type ACK, TKL 0 | code 0.00 | MID 0x1234 | option 23 (Block2): delta 13+10, length 10 | 10 bytes
    raw.send(t.port, Buffer.from('60001234da0a' + '41'.repeat(10), 'hex'));
    raw.send(t.port, Buffer.from('700012350a', 'hex')); // an RST with a payload marker-less byte: also ignored
    assert.equal(await raw.next(300), undefined, 'no answer to a malformed ACK/RST');
    assert.equal((await coapRequest(t.port, '/api/v1/fz-token/telemetry', { payload: '{"a":1}' })).code, '2.01');
  });

  it('a request with a Block2 option longer than 3 bytes gets 4.02 Bad Option', async () => {
    // ver 1, CON, TKL 1 | GET | MID | token | Uri-Path "api" "v1" "fz-token" "attributes" | Block2 length 4
    const path = ['api', 'v1', 'fz-token', 'attributes'].map((s, i) => Buffer.concat([Buffer.from([((i === 0 ? 11 : 0) << 4) | s.length]), Buffer.from(s)]));
    const datagram = Buffer.concat([Buffer.from('41010777aa', 'hex'), ...path, Buffer.from([(12 << 4) | 4]), Buffer.from('00000001', 'hex')]);
    raw.send(t.port, datagram);
    const answer = await raw.next();
    assert.ok(answer, 'answered');
    assert.equal(answer[1], (4 << 5) | 2, 'code 4.02');
  });
});
