/**
 * Every MQTT limit that ends a connection is counted in fleetgate_rejected_connections_total (issue 7 §2:
 * "every limit has ... a metric").
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import mqttPacket from 'mqtt-packet';
import { startTestServer, type TestServer } from '../support/harness.ts';

async function rejected(server: TestServer, reason: string): Promise<number> {
  const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`fleetgate_rejected_connections_total{transport="mqtt",reason="${reason}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function open(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.on('error', () => {});
  return socket;
}

describe('MQTT limits are counted in the metrics', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ logLevel: 'error', mqttConnectTimeoutMs: 200, mqttMaxPacketSize: 1024 });
  });
  after(() => server.close());

  it('a connection that never sends CONNECT is closed and counted as CONNECT_TIMEOUT', async () => {
    const before = await rejected(server, 'CONNECT_TIMEOUT');
    const socket = await open(server.mqttPort);
    await once(socket, 'close');
    assert.equal(await rejected(server, 'CONNECT_TIMEOUT'), before + 1);
  });

  it('a packet over the maximum size is refused and counted as PACKET_TOO_LARGE', async () => {
    const before = await rejected(server, 'PACKET_TOO_LARGE');
    const socket = await open(server.mqttPort);
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'c', keepalive: 60, username: 'x'.repeat(4000) }));
    await once(socket, 'close');
    assert.equal(await rejected(server, 'PACKET_TOO_LARGE'), before + 1);
  });
});
