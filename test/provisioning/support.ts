/**
 * Test support for fleetgate's provisioning-security options: a whole server, the admin API, and real device
 * clients run as child processes (curl, mosquitto_rr, coap-client-notls).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { TestServer } from '../support/harness.ts';

/** Runs a command to completion (bounded generously) and returns its exit code and output. */
export function run(command: string, args: string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The path of an executable on PATH, or undefined. */
export function tool(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) if (existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  return undefined;
}

/** Admin REST call with the server's administrator token; answers status and parsed JSON (or text). */
export async function admin(server: TestServer, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; json: any; text: string }> {
  const headers: Record<string, string> = { 'x-authorization': `Bearer ${await server.adminToken()}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${server.httpUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

/** Creates a provisioning profile through the admin API with extra provisionConfiguration fields; returns its id. */
export async function createProfile(
  server: TestServer,
  name: string,
  type: 'ALLOW_CREATE_NEW_DEVICES' | 'CHECK_PRE_PROVISIONED_DEVICES',
  key: string,
  secret: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const res = await admin(server, 'POST', '/api/deviceProfile', {
    name,
    provisionType: type,
    provisionDeviceKey: key,
    profileData: { provisionConfiguration: { type, provisionDeviceSecret: secret, ...extra } },
  });
  assert.equal(res.status, 200, res.text);
  return res.json.id.id as string;
}

/** Extra curl arguments every helper passes (e.g. `--cacert` for a test server on HTTPS). */
export const curlOptions: string[] = [];

/** An HTTP call with curl: status and body text. */
export async function curlCall(url: string, args: string[] = []): Promise<{ status: number; text: string }> {
  const out = await run('curl', ['-s', '-w', '\n%{http_code}', ...curlOptions, ...args, url]);
  assert.equal(out.code, 0, out.stderr);
  const lines = out.stdout.trimEnd().split('\n');
  const status = Number(lines.pop());
  return { status, text: lines.join('\n') };
}

/** `POST /api/v1/provision` with curl; the parsed reply and the HTTP status. */
export async function provisionWithCurl(server: TestServer, body: Record<string, unknown>): Promise<{ status: number; reply: any }> {
  const out = await run('curl', ['-s', '-w', '\n%{http_code}', ...curlOptions, '-X', 'POST', '-H', 'content-type: application/json', '-d', JSON.stringify(body), `${server.httpUrl}/api/v1/provision`]);
  assert.equal(out.code, 0, out.stderr);
  const lines = out.stdout.trimEnd().split('\n');
  const status = Number(lines.pop());
  return { status, reply: JSON.parse(lines.join('\n')) };
}

/** The MQTT provisioning exchange (spec §5.2) with mosquitto_rr (MQTT 5). */
export async function provisionWithMosquitto(server: TestServer, body: Record<string, unknown>): Promise<any> {
  const out = await run('mosquitto_rr', ['-h', '127.0.0.1', '-p', String(server.mqttPort), '-u', 'provision', '-q', '1', '-t', '/provision/request', '-e', '/provision/response', '-m', JSON.stringify(body), '-W', '20']);
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout);
}

/** POST /api/v1/provision over CoAP with libcoap's coap-client-notls. */
export async function provisionWithCoapClient(server: TestServer, body: Record<string, unknown>): Promise<any> {
  const out = await run(coapClientPath()!, ['-m', 'post', '-B', '20', '-e', JSON.stringify(body), `coap://127.0.0.1:${server.coapPort}/api/v1/provision`]);
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout.trim());
}

/** libcoap's client without DTLS (Debian libcoap3-bin). */
export function coapClientPath(): string | undefined {
  return tool('coap-client-notls') ?? tool('coap-client');
}

/** Why a suite cannot run: the first missing device client, or undefined. */
export function missingClients(...names: string[]): string | undefined {
  for (const name of names) if (!tool(name) && !(name === 'coap-client-notls' && coapClientPath())) return `${name} is not installed`;
  return undefined;
}
