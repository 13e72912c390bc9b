/**
 * Replacing a device's credentials ends its CoAP observations with a last 4.01 notification, deleting the device with a
 * last 4.03 (RFC 7641 §3.2).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generate, parse, type ParsedPacket } from 'coap-packet';
import { TEST_ACTOR } from '../../support/harness.ts';
import { device, eventually, provisionProfile, RawClient, startCoap, T, type CoapFixture } from './support.ts';

const TOKEN = 'revoked-coap-token';
const DELETED_TOKEN = 'deleted-coap-token';

describe('CoAP observations when the credentials are replaced', () => {
  let f: CoapFixture;
  before(async () => {
    f = await startCoap();
  });
  after(() => f.close());

  const observe = (feature: string, token: Buffer, messageId: number, accessToken = TOKEN) =>
    generate({
      code: 'GET',
      messageId,
      token,
      confirmable: false,
      options: [{ name: 'Observe', value: Buffer.alloc(0) }, ...['api', 'v1', accessToken, feature].map((s) => ({ name: 'Uri-Path' as const, value: Buffer.from(s) }))],
    });

  async function next(raw: RawClient): Promise<ParsedPacket> {
    const m = await raw.next(20_000);
    assert.ok(m, 'a datagram arrived');
    return parse(m);
  }

  test('the attribute and RPC observations each get 4.01, and the old token is refused', async () => {
    const profile = await provisionProfile(f, 'revoke', 'DISABLED', null, null);
    const dev = await device(f, 'revoked', profile.id, TOKEN);
    const raw = await new RawClient().open();
    try {
      raw.send(f.port, observe('attributes', Buffer.from('a1'), 11));
      assert.equal((await next(raw)).code, '2.05');
      raw.send(f.port, observe('rpc', Buffer.from('r1'), 12));
      assert.equal((await next(raw)).code, '2.03');
      await f.core.devices.saveCredentials(T, { deviceId: dev.id, credentialsType: 'ACCESS_TOKEN', credentialsId: 'revoked-coap-new' }, TEST_ACTOR);
      const ends = [await next(raw), await next(raw)];
      assert.deepEqual(ends.map((p) => p.code).sort(), ['4.01', '4.01']);
      assert.deepEqual(ends.map((p) => p.token.toString()).sort(), ['a1', 'r1']);
      assert.equal(await f.core.auth.byAccessToken(TOKEN), undefined);
      await eventually(() => f.transport.observerCount() === 0, 'both observations removed');
    } finally {
      await raw.close();
    }
  });

  test('deleting the device ends the attribute and RPC observations with 4.03', async () => {
    const profile = await provisionProfile(f, 'delete', 'DISABLED', null, null);
    const dev = await device(f, 'deleted', profile.id, DELETED_TOKEN);
    const raw = await new RawClient().open();
    try {
      raw.send(f.port, observe('attributes', Buffer.from('a2'), 21, DELETED_TOKEN));
      assert.equal((await next(raw)).code, '2.05');
      raw.send(f.port, observe('rpc', Buffer.from('r2'), 22, DELETED_TOKEN));
      assert.equal((await next(raw)).code, '2.03');
      await f.core.devices.delete(T, dev.id, TEST_ACTOR);
      const ends = [await next(raw), await next(raw)];
      assert.deepEqual(ends.map((p) => p.code).sort(), ['4.03', '4.03']);
      assert.deepEqual(ends.map((p) => p.token.toString()).sort(), ['a2', 'r2']);
      await eventually(() => f.transport.observerCount() === 0, 'both observations removed');
    } finally {
      await raw.close();
    }
  });
});
