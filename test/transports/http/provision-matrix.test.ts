/**
 * The outcome matrix of spec §4.1, row by row and strategy by strategy, over `POST /api/v1/provision` on a whole
 * server. Every outcome is HTTP 200 with the §5.1 body (spec §5.3) plus fleetgate's `reason` (DESIGN 2).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ProvisionType } from '../../../src/core/model.ts';
import { createDevice, provision, provisioningProfile, randomId, startTestServer, TENANT, type HttpAnswer, type TestServer } from './http-support.ts';

type Strategy = 'ALLOW_CREATE_NEW_DEVICES' | 'CHECK_PRE_PROVISIONED_DEVICES' | 'DISABLED';
type Status = 'SUCCESS' | 'NOT_FOUND' | 'FAILURE';
type Profile = Awaited<ReturnType<typeof provisioningProfile>>;

interface Row {
  situation: string;
  /** Prepares the situation and returns the request body. */
  setup: (server: TestServer, type: Strategy, profile: Profile) => Promise<Record<string, unknown>>;
  expect: Partial<Record<Strategy, Status>>;
  /** Extra checks on the outcome. */
  check?: (server: TestServer, type: Strategy, answer: HttpAnswer, request: Record<string, unknown>) => Promise<void>;
  /** Profile secret to save (default: a random one). */
  profileSecret?: null;
}

const request = (p: Profile, extra: Record<string, unknown> = {}) => ({ deviceName: `dev-${randomId()}`, provisionDeviceKey: p.key, provisionDeviceSecret: p.secret, ...extra });

const ROWS: Row[] = [
  { situation: 'unknown key', setup: async (_s, _t, p) => request(p, { provisionDeviceKey: randomId() }), expect: { ALLOW_CREATE_NEW_DEVICES: 'NOT_FOUND', CHECK_PRE_PROVISIONED_DEVICES: 'NOT_FOUND', DISABLED: 'NOT_FOUND' } },
  { situation: 'empty key', setup: async (_s, _t, p) => request(p, { provisionDeviceKey: '' }), expect: { ALLOW_CREATE_NEW_DEVICES: 'NOT_FOUND', CHECK_PRE_PROVISIONED_DEVICES: 'NOT_FOUND', DISABLED: 'NOT_FOUND' } },
  { situation: 'empty secret', setup: async (_s, _t, p) => request(p, { provisionDeviceSecret: '' }), expect: { ALLOW_CREATE_NEW_DEVICES: 'NOT_FOUND', CHECK_PRE_PROVISIONED_DEVICES: 'NOT_FOUND', DISABLED: 'NOT_FOUND' } },
  { situation: 'right key, wrong secret', setup: async (_s, _t, p) => request(p, { provisionDeviceSecret: `${p.secret}x` }), expect: { ALLOW_CREATE_NEW_DEVICES: 'NOT_FOUND', CHECK_PRE_PROVISIONED_DEVICES: 'NOT_FOUND', DISABLED: 'NOT_FOUND' } },
  {
    situation: 'profile secret is null', profileSecret: null,
    setup: async (_s, _t, p) => request(p, { provisionDeviceSecret: randomId() }),
    expect: { ALLOW_CREATE_NEW_DEVICES: 'NOT_FOUND', CHECK_PRE_PROVISIONED_DEVICES: 'NOT_FOUND', DISABLED: 'NOT_FOUND' },
  },
  {
    situation: 'device name not found', setup: async (_s, _t, p) => request(p),
    expect: { ALLOW_CREATE_NEW_DEVICES: 'SUCCESS', CHECK_PRE_PROVISIONED_DEVICES: 'FAILURE', DISABLED: 'NOT_FOUND' },
    check: async (s, type, answer, req) => {
      if (type !== 'ALLOW_CREATE_NEW_DEVICES') return;
      const device = await s.core.devices.findByName(TENANT, req.deviceName as string);
      const creds = await s.core.devices.getCredentials(TENANT, device.id);
      assert.equal(answer.json.credentialsValue, creds.credentialsId, 'the reply carries the created device token');
      assert.equal(answer.json.deviceId, device.id);
    },
  },
  {
    situation: 'deviceName absent',
    setup: async (_s, _t, p) => {
      const { deviceName: _omit, ...rest } = request(p);
      return rest;
    },
    expect: { ALLOW_CREATE_NEW_DEVICES: 'SUCCESS', CHECK_PRE_PROVISIONED_DEVICES: 'FAILURE', DISABLED: 'NOT_FOUND' },
    check: async (s, type, answer) => {
      if (type !== 'ALLOW_CREATE_NEW_DEVICES') return;
      assert.match(answer.json.deviceName, /^[A-Za-z0-9]{20}$/, 'a random 20-char name (spec §4.1)');
      await s.core.devices.findByName(TENANT, answer.json.deviceName);
    },
  },
  { situation: 'deviceName whitespace only', setup: async (_s, _t, p) => request(p, { deviceName: '   ' }), expect: { ALLOW_CREATE_NEW_DEVICES: 'FAILURE', CHECK_PRE_PROVISIONED_DEVICES: 'FAILURE', DISABLED: 'FAILURE' } },
  {
    situation: 'device exists, same profile, never provisioned',
    setup: async (s, _t, p) => {
      const req = request(p);
      await createDevice(s, req.deviceName, p);
      return req;
    },
    expect: { ALLOW_CREATE_NEW_DEVICES: 'FAILURE', CHECK_PRE_PROVISIONED_DEVICES: 'SUCCESS', DISABLED: 'NOT_FOUND' },
    check: async (s, type, answer, req) => {
      if (type !== 'CHECK_PRE_PROVISIONED_DEVICES') return;
      const device = await s.core.devices.findByName(TENANT, req.deviceName as string);
      assert.equal(answer.json.credentialsValue, (await s.core.devices.getCredentials(TENANT, device.id)).credentialsId, 'existing credentials');
      const state = await s.core.attributes.get(device.id, 'SERVER_SCOPE', ['provisionState']);
      assert.deepEqual(state.map((a) => a.value), [{ type: 'STRING', value: 'provisioned' }], 'spec §6: provisionState set');
    },
  },
  {
    situation: 'device exists, already provisioned',
    setup: async (s, type, p) => {
      const req = request(p);
      if (type !== 'ALLOW_CREATE_NEW_DEVICES') await createDevice(s, req.deviceName, p);
      const first = await provision(s, req);
      if (type !== 'DISABLED') assert.equal(first.json.status, 'SUCCESS', 'the first request provisions');
      return req;
    },
    expect: { ALLOW_CREATE_NEW_DEVICES: 'FAILURE', CHECK_PRE_PROVISIONED_DEVICES: 'FAILURE', DISABLED: 'NOT_FOUND' },
  },
  {
    situation: 'device exists in a different profile',
    setup: async (s, _t, p) => {
      const req = request(p);
      await createDevice(s, req.deviceName); // the tenant's default profile
      return req;
    },
    expect: { ALLOW_CREATE_NEW_DEVICES: 'FAILURE', CHECK_PRE_PROVISIONED_DEVICES: 'FAILURE', DISABLED: 'NOT_FOUND' },
  },
  {
    situation: 'supplied token already used by another device',
    setup: async (s, type, p) => {
      const taken = (await createDevice(s, `other-${randomId()}`)).token;
      const req = request(p, { credentialsType: 'ACCESS_TOKEN', token: taken });
      if (type === 'CHECK_PRE_PROVISIONED_DEVICES') await createDevice(s, req.deviceName, p);
      return req;
    },
    expect: { ALLOW_CREATE_NEW_DEVICES: 'FAILURE', CHECK_PRE_PROVISIONED_DEVICES: 'SUCCESS', DISABLED: 'NOT_FOUND' },
    check: async (s, type, answer, req) => {
      if (type === 'ALLOW_CREATE_NEW_DEVICES') {
        await assert.rejects(s.core.devices.findByName(TENANT, req.deviceName as string), 'rolled back: no device');
      }
      if (type === 'CHECK_PRE_PROVISIONED_DEVICES') assert.notEqual(answer.json.credentialsValue, req.token, 'request credentials ignored');
    },
  },
  {
    situation: 'MQTT_BASIC with clientId+password but no username',
    setup: async (_s, _t, p) => request(p, { credentialsType: 'MQTT_BASIC', clientId: `c-${randomId()}`, password: 'pw' }),
    expect: { ALLOW_CREATE_NEW_DEVICES: 'FAILURE' },
  },
  {
    situation: 'MQTT_BASIC with neither clientId nor username',
    setup: async (_s, _t, p) => request(p, { credentialsType: 'MQTT_BASIC', password: 'pw' }),
    expect: { ALLOW_CREATE_NEW_DEVICES: 'FAILURE' },
  },
];

const ERROR_MESSAGES = { NOT_FOUND: 'Provision data was not found!', FAILURE: 'Failed to provision device!' } as const;

/** spec §5.1 body, key order included, plus DESIGN 2's additions after `status`. */
function assertBody(answer: HttpAnswer, status: Status): void {
  assert.equal(answer.status, 200, 'spec §5.3: HTTP 200 for every outcome');
  assert.match(answer.contentType ?? '', /^application\/json/);
  const keys = Object.keys(answer.json);
  if (status === 'SUCCESS') {
    assert.deepEqual(keys, ['credentialsValue', 'credentialsType', 'status', 'deviceId', 'deviceName']);
    assert.equal(answer.json.credentialsType, 'ACCESS_TOKEN');
  } else {
    assert.deepEqual(keys, ['errorMsg', 'status', 'reason']);
    assert.equal(answer.json.errorMsg, ERROR_MESSAGES[status]);
    assert.match(answer.json.reason, /^[A-Z_]+$/);
  }
}

describe('spec §4.1 outcome matrix over HTTP', () => {
  let server: TestServer;
  // A repeat for a never-connected device counts as a lost-response retry only after an hour here, so every repeat
  // in this file is decided as in ThingsBoard (DESIGN 3 is tested in provision.test.ts).
  before(async () => (server = await startTestServer({ logLevel: 'warn', provisionRetryAfterMs: 3_600_000 })));
  after(() => server.close());

  for (const row of ROWS) {
    for (const [type, expected] of Object.entries(row.expect) as [Strategy, Status][]) {
      it(`${row.situation}: ${type} -> ${expected}`, async () => {
        const profile = await provisioningProfile(server, type as ProvisionType, randomId(), row.profileSecret === null ? null : randomId());
        const req = await row.setup(server, type, profile);
        const answer = await provision(server, req);
        assert.equal(answer.json?.status, expected, answer.text);
        assertBody(answer, expected);
        await row.check?.(server, type, answer, req);
      });
    }
  }
});
