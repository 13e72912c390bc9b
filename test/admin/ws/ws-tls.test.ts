import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import https from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { DEFAULT_TENANT_ID } from '../../../src/core/model.ts';
import { selfSigned, skipUnlessOpenssl, type KeyPair } from '../../hardening/certificates.ts';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../../support/harness.ts';
import { poll } from './ws-client.ts';

/** POST over HTTPS trusting only `ca`. */
function postJson(url: string, body: unknown, ca: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve(JSON.parse(text)));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('WebSocket telemetry API over HTTPS (wss://)', { skip: skipUnlessOpenssl() }, () => {
  let server: TestServer;
  let pair: KeyPair;
  let dir: string;

  before(async () => {
    pair = selfSigned('fleetgate-test', '127.0.0.1');
    dir = mkdtempSync(join(tmpdir(), 'fleetgate-wss-'));
    writeFileSync(join(dir, 'cert.pem'), pair.cert);
    writeFileSync(join(dir, 'key.pem'), pair.key);
    server = await startTestServer({ tlsCert: join(dir, 'cert.pem'), tlsKey: join(dir, 'key.pem') });
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves /api/ws/plugins/telemetry on the HTTPS port and pushes committed telemetry', async () => {
    const base = `https://127.0.0.1:${server.ports.http}`;
    const { token } = await postJson(`${base}/api/auth/login`, { username: ADMIN_EMAIL, password: ADMIN_PASSWORD }, pair.cert);
    const actor = { userId: null, userName: 'test', source: { transport: 'cli' as const } };
    const device = await server.core.devices.save(DEFAULT_TENANT_ID, { name: 'wss-device' }, actor, 'wss-token');
    const identity = (await server.core.auth.byAccessToken('wss-token'))!;
    const ws = new WebSocket(`wss://127.0.0.1:${server.ports.http}/api/ws/plugins/telemetry?token=${token}`, { ca: pair.cert });
    const messages: any[] = [];
    ws.on('message', (data) => messages.push(JSON.parse(String(data))));
    try {
      await new Promise<void>((resolve, reject) => (ws.once('open', () => resolve()), ws.once('error', reject)));
      ws.send(JSON.stringify({ tsSubCmds: [{ cmdId: 1, entityType: 'DEVICE', entityId: device.id, keys: 'temperature' }] }));
      await poll(() => (messages.length >= 1 ? true : undefined), 20_000, 'the snapshot');
      await server.core.telemetry.ingestJson(identity, '{"temperature":19.5}');
      await poll(() => (messages.length >= 2 ? true : undefined), 20_000, 'the update');
      assert.equal(messages[1].data.temperature[0][1], '19.5');
    } finally {
      ws.terminate();
    }
  });
});
