/**
 * End-to-end helpers: a whole fleetgate server from the lead's harness, ThingsBoard's provisioning
 * fixture (spec §9 "Common fixture"), MQTT.js connections, and external-tool detection.
 */
import { skipForMissingTool } from '../../support/tools.ts';
import { provisioningProfileInput } from '../../support/fixtures.ts';
import { spawnSync } from 'node:child_process';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { TestContext } from 'node:test';
import { DEFAULT_TENANT_ID, type Device, type DeviceProfile, type ProvisionType } from '../../../src/core/model.ts';
import { startTestServer, TEST_ACTOR, type TestServer } from '../../support/harness.ts';

export { startTestServer, TEST_ACTOR, type TestServer };
export const TENANT = DEFAULT_TENANT_ID;

/** spec §9: a profile with provisioning strategy `type`, key and secret (null for DISABLED). */
export async function provisioningProfile(server: TestServer, type: ProvisionType, key: string | null, secret: string | null, name = 'JSON'): Promise<DeviceProfile> {
  return server.core.profiles.save(
    TENANT,
    provisioningProfileInput(name, type, key, secret, 'MQTT'),
    TEST_ACTOR,
  );
}

/** Creates a device with ACCESS_TOKEN credentials (generated unless given). */
export async function createDevice(server: TestServer, name: string, profile?: DeviceProfile, token?: string): Promise<{ device: Device; token: string }> {
  const device = await server.core.devices.save(TENANT, { name, ...(profile ? { deviceProfileId: profile.id } : {}) }, TEST_ACTOR, token);
  const creds = await server.core.devices.getCredentials(TENANT, device.id);
  return { device, token: creds.credentialsId };
}

/** Connects MQTT.js (v4 = 3.1.1 or v5) to the server; resolves on CONNACK, rejects on refusal. */
export async function mqttjs(server: TestServer, options: IClientOptions & { protocolVersion?: 4 | 5 }): Promise<MqttClient> {
  return mqtt.connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
}

/** Next message on `topic` (bounded wait). */
export function nextMessage(client: MqttClient, topic: string | RegExp, timeoutMs = 5000): Promise<{ topic: string; payload: Buffer; packet: unknown }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('message', onMessage);
      reject(new Error(`no message on ${topic} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (t: string, payload: Buffer, packet: unknown) => {
      if (typeof topic === 'string' ? t !== topic : !topic.test(t)) return;
      clearTimeout(timer);
      client.off('message', onMessage);
      resolve({ topic: t, payload, packet });
    };
    client.on('message', onMessage);
  });
}

/** Runs `fn` with a fresh server, closing it afterwards. */
export async function withServer<T>(fn: (server: TestServer) => Promise<T>): Promise<T> {
  const server = await startTestServer({ logLevel: 'warn' });
  try {
    return await fn(server);
  } finally {
    await server.close();
  }
}

/**
 * True when an external tool can be run. Missing -> the test is skipped with a message, unless
 * FLEETGATE_TEST_REQUIRE_ALL=1, when it fails.
 */
export function haveTool(t: TestContext, command: string, args: string[] = ['--help']): boolean {
  const probe = spawnSync(command, args, { stdio: 'ignore', timeout: 10_000 });
  if (probe.error === undefined) return true;
  const message = `${command} is not installed (${probe.error.message})`;
  skipForMissingTool(t, message);
  return false;
}
