/**
 * A provisioning answer that cannot be rendered (fault injected into the result core returns): the error is logged
 * without secrets, the client gets PUBACK 0x83 and DISCONNECT, the session closes, and the server goes on serving
 * (before the fix the throw was an unhandled rejection, which ends the process).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { ProvisionResult } from '../../../src/core/api.ts';
import { mqttjs, provisioningProfile, withServer } from './e2e-support.ts';

type Server = Parameters<Parameters<typeof withServer>[0]>[0];

/**
 * Fault: every successful provisioning result throws when its credentials type is read, with `message` (which quotes
 * the credentials just issued and the request's secret). Returns the credentials issued last and a way to restore.
 */
function failAnswers(server: Server, message: (issued: string, secret: string | undefined) => string) {
  const provisioning = server.core.provisioning;
  const provision = provisioning.provision.bind(provisioning);
  const state = { issued: '', restore: () => void (provisioning.provision = provision) };
  provisioning.provision = async (request, source) => {
    const result = await provision(request, source);
    if (result.status !== 'SUCCESS') return result;
    state.issued = String(result.credentialsValue);
    return new Proxy(result, {
      get(target, key) {
        if (key === 'credentialsType') throw new Error(message(state.issued, request.provisionDeviceSecret));
        return Reflect.get(target, key);
      },
    }) as ProvisionResult;
  };
  return state;
}

/** The failure's log line; asserts that no log line holds the issued credentials or the provision secret. */
function loggedWithoutSecrets(server: Server, issued: string, secret: string): string {
  assert.ok(issued.length > 0, 'the fault was injected');
  const logged = server.logLines.find((l) => l.includes('mqtt_provision_answer_failed'));
  assert.ok(logged, 'the failure is logged');
  for (const line of server.logLines) {
    assert.ok(!line.includes(issued), `credentials not logged: ${line}`);
    assert.ok(!line.includes(secret), `provision secret not logged: ${line}`);
  }
  return logged;
}

it('an error while answering a provisioning request is logged without secrets and closes only that session', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    await withServer(async (server) => {
      await provisioningProfile(server, 'ALLOW_CREATE_NEW_DEVICES', 'fault-key', 'fault-secret-8e1f');
      const fault = failAnswers(server, (issued, secret) => `cannot render credentials ${issued} for ${secret}`);
      const client = await mqttjs(server, { protocolVersion: 5, username: 'provision', clientId: 'fault' });
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      const disconnect = new Promise<number | undefined>((resolve) => client.once('disconnect', (packet) => resolve(packet.reasonCode)));
      await assert.rejects(
        client.publishAsync('/provision/request', JSON.stringify({ deviceName: 'fault-1', provisionDeviceKey: 'fault-key', provisionDeviceSecret: 'fault-secret-8e1f' }), { qos: 1 }),
        (err: { code?: number }) => err.code === 0x83,
        'PUBACK 0x83: the server failed',
      );
      assert.equal(await disconnect, 0x83);
      await closed;
      client.end(true);
      loggedWithoutSecrets(server, fault.issued, 'fault-secret-8e1f');

      // The server still serves: the next request (fault gone) is answered.
      fault.restore();
      const next = await mqttjs(server, { protocolVersion: 5, username: 'provision', clientId: 'after' });
      try {
        const answer = new Promise<Buffer>((resolve) => next.once('message', (_topic, payload) => resolve(payload)));
        await next.subscribeAsync('/provision/response', { qos: 1 });
        await next.publishAsync('/provision/request', JSON.stringify({ deviceName: 'fault-2', provisionDeviceKey: 'fault-key', provisionDeviceSecret: 'fault-secret-8e1f' }), { qos: 1 });
        assert.equal(JSON.parse(String(await answer)).status, 'SUCCESS');
      } finally {
        next.end(true);
      }
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(unhandled, [], 'no unhandled rejection');
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

it('an answer error whose message spans several lines (a PEM, pretty JSON) is logged without any line of it', async () => {
  await withServer(async (server) => {
    await provisioningProfile(server, 'ALLOW_CREATE_NEW_DEVICES', 'lines-key', 'lines-secret-4c2a');
    const fault = failAnswers(server, (issued, secret) => `cannot render the credentials:\n${issued}\nrequested with\n${secret}`);
    const client = await mqttjs(server, { protocolVersion: 5, username: 'provision', clientId: 'lines' });
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    await assert.rejects(
      client.publishAsync('/provision/request', JSON.stringify({ deviceName: 'lines-1', provisionDeviceKey: 'lines-key', provisionDeviceSecret: 'lines-secret-4c2a' }), { qos: 1 }),
      (err: { code?: number }) => err.code === 0x83,
    );
    await closed;
    client.end(true);
    const logged = loggedWithoutSecrets(server, fault.issued, 'lines-secret-4c2a');
    assert.ok(logged.includes('provision-answer-fault.test.ts'), 'the stack frames are kept');
  });
});
