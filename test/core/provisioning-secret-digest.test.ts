/**
 * The profile secret comparison of provisioning (src/core/provisioning/derived-secret.ts) keeps the digest of each
 * cached profile object's secret: still the right answer for right, wrong, longer and shorter secrets, and a secret
 * changed on the same object is compared against its new value, never the remembered one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { provisionSecretMatches } from '../../src/core/provisioning/derived-secret.ts';
import type { DeviceProfile } from '../../src/core/model.ts';

function profile(secret: string): DeviceProfile {
  return { id: 'p1', name: 'p', provisionType: 'ALLOW_CREATE_NEW_DEVICES', profileData: { provisionConfiguration: { type: 'ALLOW_CREATE_NEW_DEVICES', provisionDeviceSecret: secret } } } as unknown as DeviceProfile;
}

test('the remembered digest answers like a fresh comparison, and follows a changed secret', () => {
  const p = profile('first-secret');
  for (let i = 0; i < 3; i++) {
    assert.equal(provisionSecretMatches(p, 'first-secret', 'dev', 'first-secret'), true);
    assert.equal(provisionSecretMatches(p, 'first-secret', 'dev', 'first-secreT'), false);
    assert.equal(provisionSecretMatches(p, 'first-secret', 'dev', 'first-secret-and-more'), false);
    assert.equal(provisionSecretMatches(p, 'first-secret', 'dev', ''), false);
  }
  // The same object with another secret (an updated profile kept by reference).
  (p.profileData!.provisionConfiguration as { provisionDeviceSecret: string }).provisionDeviceSecret = 'second';
  assert.equal(provisionSecretMatches(p, 'second', 'dev', 'first-secret'), false);
  assert.equal(provisionSecretMatches(p, 'second', 'dev', 'second'), true);
  // Another profile object with the first secret is compared on its own.
  assert.equal(provisionSecretMatches(profile('first-secret'), 'first-secret', 'dev', 'second'), false);
});
