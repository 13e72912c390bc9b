import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.ts';
import { httpLogger } from '../../src/transports/http/request-log.ts';

function capture(): { sink: Writable; lines: () => string[] } {
  let out = '';
  const sink = new Writable({ write: (chunk, _e, cb) => ((out += String(chunk)), cb()) });
  return { sink, lines: () => out.split('\n').filter((l) => l !== '') };
}

// DESIGN 6: secrets are never logged; a child logger's bindings are part of every line it writes.
describe('secrets in child loggers bindings are redacted', () => {
  test('child, grandchild and a child with its own serializers', () => {
    const { sink, lines } = capture();
    const root = createLogger('info', sink);
    const child = root.child({ device: { credentialsValue: 'CHILD-SECRET-1' }, password: 'CHILD-SECRET-2' });
    child.info('from child');
    child.child({ provisionDeviceSecret: 'GRANDCHILD-SECRET-3', nested: [{ token: 'GRANDCHILD-SECRET-4' }] }).info('from grandchild');
    httpLogger(root).child({ headers: { authorization: 'Bearer HTTP-CHILD-SECRET-5' } }).info('from http child');
    root.child({ component: 'plain' }, { level: 'info' }).child({ accessToken: 'OPTIONS-CHILD-SECRET-6' }).info('child of a child with options');
    const all = lines();
    assert.equal(all.length, 4);
    for (const line of all) assert.doesNotMatch(line, /SECRET-\d/, line);
    const first = JSON.parse(all[0]) as { device: { credentialsValue: string }; password: string };
    assert.equal(first.device.credentialsValue, '[redacted]');
    assert.equal(first.password, '[redacted]');
    assert.equal((JSON.parse(all[1]) as { provisionDeviceSecret: string }).provisionDeviceSecret, '[redacted]');
    assert.equal((JSON.parse(all[3]) as { component: string }).component, 'plain'); // other bindings are kept
  });
});

// A log call never throws: a secret field that is read-only (a frozen object, a getter, a non-writable property) is
// redacted in the copy like any other.
describe('read-only secret fields', () => {
  test('frozen objects, getters and non-writable fields are redacted without throwing', () => {
    const { sink, lines } = capture();
    const log = createLogger('info', sink);
    const err = Object.defineProperty(new Error('failed'), 'token', { value: 'READONLY-SECRET-3', enumerable: true, writable: false });
    log.info({ cfg: Object.freeze({ password: 'FROZEN-SECRET-1', port: 1883 }) }, 'frozen');
    log.info({ cfg: { get password() { return 'GETTER-SECRET-2'; }, port: 1883 } }, 'getter');
    log.error({ err }, 'read-only error field');
    const all = lines();
    assert.equal(all.length, 3);
    for (const line of all) assert.doesNotMatch(line, /SECRET-\d/, line);
    assert.deepEqual((JSON.parse(all[0]) as { cfg: unknown }).cfg, { password: '[redacted]', port: 1883 });
    assert.deepEqual((JSON.parse(all[1]) as { cfg: unknown }).cfg, { password: '[redacted]', port: 1883 });
    const logged = JSON.parse(all[2]) as { err: { message: string; token: string } };
    assert.equal(logged.err.message, 'failed');
    assert.equal(logged.err.token, '[redacted]');
  });
});

describe('secrets in logged URLs', () => {
  test('query parameters named like a secret are redacted; others and the device token rule are kept', async () => {
    const { redactUrl } = await import('../../src/log.ts');
    assert.equal(redactUrl('/api/ws/plugins/telemetry?token=eyJ.JWT.sig'), '/api/ws/plugins/telemetry?token=[redacted]');
    assert.equal(redactUrl('/api/device?accessToken=T0K&x=1'), '/api/device?accessToken=[redacted]&x=1');
    assert.equal(redactUrl('/api/noauth/resetPassword?resetToken=R3S'), '/api/noauth/resetPassword?resetToken=[redacted]');
    assert.equal(redactUrl('/api/v1/DEV1CE/rpc?timeout=500'), '/api/v1/[token]/rpc?timeout=500');
    assert.equal(redactUrl('/api/v1/provision'), '/api/v1/provision');
    assert.equal(redactUrl('/api/v1/provision?x=1'), '/api/v1/provision?x=1');
    // A device whose access token is the word `provision` (any token is allowed): its telemetry path holds the token.
    assert.equal(redactUrl('/api/v1/provision/telemetry'), '/api/v1/[token]/telemetry');
    assert.equal(redactUrl('/api/v1/provisionX/attributes'), '/api/v1/[token]/attributes');
  });
});
