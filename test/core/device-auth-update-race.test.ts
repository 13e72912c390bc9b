/**
 * A device update racing a login: a lookup that starts after the update must not be handed the answer of a load that
 * began before it (the old name), or the session it opens keeps the old identity for its whole life (it opens after
 * the bus `device-updated` has passed, so no later update fixes it).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestCore, type TestCore } from '../support/core.ts';
import { TEST_ACTOR } from '../support/harness.ts';
import { DEFAULT_TENANT_ID as T } from '../../src/core/model.ts';
import { DeviceAuth } from '../../src/core/device-auth.ts';
import type { Store } from '../../src/core/ports/store.ts';

let t: TestCore;
before(async () => {
  t = await createTestCore();
});
after(() => t.close());

test('a login starting after a rename gets the new name even while an older lookup of the token is in flight', async () => {
  const device = await t.core.devices.save(T, { name: 'race-old' }, TEST_ACTOR, 'RACE_TOKEN_1');
  // Fault injection: the first profile read (the last step of a load) waits until released.
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let reachedGate!: () => void;
  const atGate = new Promise<void>((resolve) => (reachedGate = resolve));
  let gated = false;
  const store = new Proxy(t.store as unknown as Store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop === 'getProfile' && typeof value === 'function') {
        return async (...args: unknown[]) => {
          if (!gated) {
            gated = true;
            reachedGate();
            await gate;
          }
          return value.apply(target, args);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const auth = new DeviceAuth(store);
  try {
    const first = auth.byAccessToken('RACE_TOKEN_1'); // a CONNECT: has read the device (old name), not yet done
    await atGate;
    await t.core.devices.save(T, { id: device.id, name: 'race-new' }, TEST_ACTOR);
    auth.deviceUpdated(device.id); // the bus `device-updated`, heard by this node
    const second = auth.byAccessToken('RACE_TOKEN_1'); // a CONNECT after the rename
    release();
    assert.equal((await second)?.deviceName, 'race-new');
    // The login that began before the rename ends after it: its session opens once the update has passed, so it too
    // must stand for the new name.
    assert.equal((await first)?.deviceName, 'race-new');
    assert.equal((await auth.byAccessToken('RACE_TOKEN_1'))?.deviceName, 'race-new');
  } finally {
    release();
    auth.close();
  }
});

test('a login whose lookup read the device before it was deleted is refused', async () => {
  const device = await t.core.devices.save(T, { name: 'race-deleted' }, TEST_ACTOR, 'RACE_TOKEN_2');
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let reachedGate!: () => void;
  const atGate = new Promise<void>((resolve) => (reachedGate = resolve));
  let gated = false;
  const store = new Proxy(t.store as unknown as Store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop === 'getProfile' && typeof value === 'function') {
        return async (...args: unknown[]) => {
          if (!gated) {
            gated = true;
            reachedGate();
            await gate;
          }
          return value.apply(target, args);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const auth = new DeviceAuth(store);
  try {
    const login = auth.byAccessToken('RACE_TOKEN_2'); // a CONNECT: has read the device, not yet done
    await atGate;
    await t.core.devices.delete(T, device.id, TEST_ACTOR);
    auth.invalidate('RACE_TOKEN_2'); // the bus `credentials-changed` of the deletion, heard by this node
    release();
    // Its session would open after the deletion has passed (no `device-deleted` would reach it): refused instead.
    assert.equal(await login, undefined);
  } finally {
    release();
    auth.close();
  }
});
