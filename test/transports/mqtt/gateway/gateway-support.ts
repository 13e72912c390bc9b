/**
 * Helpers of the gateway API tests: gateway devices, MQTT.js publishes that report the PUBACK's reason code and
 * Reason String, and bounded waits for downlinks.
 */
import type { MqttClient } from 'mqtt';
import { TENANT, TEST_ACTOR, type TestServer } from '../e2e-support.ts';

/** Creates a device with `additionalInfo.gateway` true; returns its id and access token. */
export async function createGateway(server: TestServer, name: string): Promise<{ id: string; token: string }> {
  const device = await server.core.devices.save(TENANT, { name, additionalInfo: { gateway: true } }, TEST_ACTOR);
  const creds = await server.core.devices.getCredentials(TENANT, device.id);
  return { id: device.id, token: creds.credentialsId };
}

/** The PUBACK of a QoS 1 publish: its reason code (0 on MQTT 3.1.1) and, on MQTT 5, its Reason String. */
export interface Ack {
  reasonCode: number;
  reasonString?: string;
}

/** Publishes at QoS 1 and resolves with the PUBACK; rejects when the connection ends first. */
export function publishAck(client: MqttClient, topic: string, body: string | Buffer | object): Promise<Ack> {
  const payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    // MQTT.js keeps an unacknowledged QoS 1 message for a reconnect and never calls back when the connection is gone.
    const onClose = () => reject(new Error(`connection closed before the PUBACK of ${topic}`));
    client.once('close', onClose);
    client.publish(topic, payload, { qos: 1 }, (err, packet) => {
      client.off('close', onClose);
      const ack = packet as { reasonCode?: number; properties?: { reasonString?: string } } | undefined;
      if (ack && (ack as { cmd?: string }).cmd === 'puback') resolve({ reasonCode: ack.reasonCode ?? 0, reasonString: ack.properties?.reasonString });
      else if (err) reject(err);
      else resolve({ reasonCode: 0 });
    });
  });
}

/** Collects every message on `topic` from now on. */
export function collect(client: MqttClient, topic: string): { messages: any[]; waitFor(n: number, what?: string, timeoutMs?: number): Promise<any[]> } {
  const messages: any[] = [];
  client.on('message', (t, payload) => {
    if (t === topic) messages.push(JSON.parse(payload.toString()));
  });
  return {
    messages,
    async waitFor(n, what = `${n} messages on ${topic}`, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < n) {
        if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} (have ${messages.length})`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return messages;
    },
  };
}

/** Polls `check` until true, at most `timeoutMs`. */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
