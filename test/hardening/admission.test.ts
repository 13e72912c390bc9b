/**
 * Admission control and limits (issue 7 §2): MQTT maximum connections and connect rate per source, answered on
 * CONNECT with a code naming the limit; the per-device message rate ("capacity:seconds", spec §10) on MQTT and CoAP.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { Throttle } from '../../src/core/throttle/index.ts';
import { startCoapTransport } from '../../src/transports/coap/index.ts';
import { startMqttTransport, type MqttLimits } from '../../src/transports/mqtt/index.ts';
import { silentLogger } from '../support/core.ts';
import { coapRequest } from '../transports/coap/support.ts';
import { WireClient } from '../transports/mqtt/wire-client.ts';
import { coreWith } from './support.ts';

const config = { ...loadConfig({ env: {} }), host: '127.0.0.1' };

async function withMqtt(limits: Partial<MqttLimits>, throttle: Throttle, fn: (port: number, rejected: string[]) => Promise<void>): Promise<void> {
  const t = await coreWith(throttle);
  const rejected: string[] = [];
  const mqtt = await startMqttTransport({ core: t.core, config, logger: silentLogger, host: '127.0.0.1', port: 0, limits, onRejected: (r) => rejected.push(r) });
  try {
    await fn(mqtt.port, rejected);
  } finally {
    await mqtt.close();
    await t.close();
  }
}

describe('MQTT admission', () => {
  it('refuses connections beyond maxConnections: v5 CONNACK 0x89 server busy, v3 3; room again once one closes', async () => {
    await withMqtt({ maxConnections: 2 }, new Throttle(), async (port, rejected) => {
      const a = await WireClient.tcp(port, 4);
      const b = await WireClient.tcp(port, 4);
      assert.equal((await a.connect({ username: 'token-1', clientId: 'a' })).returnCode, 0);
      assert.equal((await b.connect({ username: 'token-1', clientId: 'b' })).returnCode, 0);
      const v5 = await WireClient.tcp(port, 5);
      assert.equal((await v5.connect({ username: 'token-1', clientId: 'c' })).reasonCode, 0x89);
      await v5.waitClosed();
      const v3 = await WireClient.tcp(port, 4);
      assert.equal((await v3.connect({ username: 'token-1', clientId: 'd' })).returnCode, 3);
      await v3.waitClosed();
      assert.deepEqual(rejected, ['MAX_CONNECTIONS', 'MAX_CONNECTIONS']);
      a.end();
      await a.waitClosed();
      let accepted = false;
      for (let i = 0; i < 50 && !accepted; i++) {
        const again = await WireClient.tcp(port, 4);
        accepted = (await again.connect({ username: 'token-1', clientId: 'e' })).returnCode === 0;
        again.destroy();
        if (!accepted) await new Promise((r) => setTimeout(r, 20)); // the server may not have seen the close yet
      }
      assert.ok(accepted);
      b.destroy();
    });
  });

  it('limits new connections per source: v5 CONNACK 0x9F connection rate exceeded', async () => {
    await withMqtt({ connectRatePerSource: '3:60' }, new Throttle(), async (port, rejected) => {
      for (let i = 0; i < 3; i++) {
        const c = await WireClient.tcp(port, 5);
        assert.equal((await c.connect({ username: 'token-1', clientId: `ok-${i}` })).reasonCode, 0);
        c.destroy();
      }
      const refused = await WireClient.tcp(port, 5);
      assert.equal((await refused.connect({ username: 'token-1', clientId: 'late' })).reasonCode, 0x9f);
      assert.deepEqual((await refused.waitClosed()).map((p) => [p.cmd, (p as { reasonCode?: number }).reasonCode]), [['disconnect', 0x9f]]);
      assert.deepEqual(rejected, ['CONNECT_RATE']);
    });
  });
});

describe('per-device message rate ("capacity:seconds")', () => {
  it('MQTT 5: PUBACK 0x97 quota exceeded past the limit, nothing stored; MQTT 3.1.1: the connection closes', async () => {
    await withMqtt({}, new Throttle({ limits: { deviceMessageRate: '3:60' } }), async (port) => {
      const v5 = await WireClient.tcp(port, 5);
      assert.equal((await v5.connect({ username: 'token-1', clientId: 'rate' })).reasonCode, 0);
      for (let i = 1; i <= 3; i++) assert.equal((await v5.publish('v1/devices/me/telemetry', `{"n":${i}}`, 1, i))?.reasonCode ?? 0, 0);
      assert.equal((await v5.publish('v1/devices/me/telemetry', '{"n":4}', 1, 4))?.reasonCode, 0x97);
      v5.destroy();
      const v3 = await WireClient.tcp(port, 4);
      assert.equal((await v3.connect({ username: 'token-1', clientId: 'rate3' })).returnCode, 0);
      v3.send({ cmd: 'publish', topic: 'v1/devices/me/telemetry', payload: '{"n":5}', qos: 1, messageId: 5, retain: false, dup: false });
      assert.deepEqual(await v3.waitClosed(), [], 'no PUBACK: 3.1.1 has no negative acknowledgement');
    });
  });

  it('CoAP: 4.29 with Max-Age', async () => {
    const t = await coreWith(new Throttle({ limits: { deviceMessageRate: '2:30' } }));
    const coap = await startCoapTransport({ core: t.core, config, logger: silentLogger, host: '127.0.0.1', port: 0 });
    try {
      for (let i = 0; i < 2; i++) assert.equal((await coapRequest(coap.port, '/api/v1/token-1/telemetry', { payload: '{"a":1}' })).code, '2.01');
      const limited = await coapRequest(coap.port, '/api/v1/token-1/telemetry', { payload: '{"a":1}' });
      assert.equal(limited.code, '4.29');
      assert.match(limited.text, /2:30/, 'the diagnostic names the limit');
      assert.equal(limited.res.headers['Max-Age'], 15, 'one message back after 30 s / 2');
    } finally {
      await coap.close();
      await t.close();
    }
  });
});
