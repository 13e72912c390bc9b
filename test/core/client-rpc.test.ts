import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { answerClientRpc, parseClientRpc } from '../../src/core/client-rpc.ts';
import { FleetgateError } from '../../src/core/errors.ts';

describe('client-side RPC (spec §8.2)', () => {
  test('getSessionLimits reports the transport limits and no rate limits', () => {
    assert.deepEqual(answerClientRpc(parseClientRpc('{"method":"getSessionLimits","params":{}}'), { maxPayloadSize: 1024, maxInflightMessages: 7 }), {
      maxPayloadSize: 1024,
      maxInflightMessages: 7,
      rateLimits: { messages: '', telemetryMessages: '', telemetryDataPoints: '' },
    });
  });
  test('other methods are NOT_IMPLEMENTED', () => {
    assert.throws(() => answerClientRpc({ method: 'getTime', params: {} }, { maxPayloadSize: 1, maxInflightMessages: 1 }), (e: unknown) => e instanceof FleetgateError && e.code === 'NOT_IMPLEMENTED');
  });
  for (const [name, body, code] of [
    ['not JSON', '{', 'MALFORMED_PAYLOAD'],
    ['an array', '[]', 'INVALID_ARGUMENT'],
    ['no method', '{"params":1}', 'INVALID_ARGUMENT'],
    ['an empty method', '{"method":""}', 'INVALID_ARGUMENT'],
  ] as const) {
    test(`${name} is rejected with ${code}`, () => {
      assert.throws(() => parseClientRpc(body), (e: unknown) => e instanceof FleetgateError && e.code === code);
    });
  }
});
