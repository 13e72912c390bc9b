/**
 * A hand-built stand-in for core, enough for the transport's rule tests over an in-memory duplex:
 * devices by access token, telemetry whose "commit" the test can hold back, shared-attribute and RPC
 * pushes into the open sessions.
 */
import type { DeviceIdentity, ProvisionRequest, ProvisionResult, RpcDelivery, SessionHandlers } from '../../../src/core/api.ts';
import type { Core, CoreLogger } from '../../../src/core/core-types.ts';
import { FleetgateError } from '../../../src/core/errors.ts';
import { DEFAULT_MQTT_LIMITS, MqttConnection, type MqttLimits } from '../../../src/transports/mqtt/index.ts';
import { duplexPair, WireClient } from './wire-client.ts';

export const silentLogger: CoreLogger = { info() {}, warn() {}, error() {}, debug() {} };

interface OpenSession {
  device: DeviceIdentity;
  handlers: SessionHandlers;
  closed: boolean;
}

export class FakeCore {
  readonly devices = new Map<string, DeviceIdentity>();
  readonly telemetry: Array<{ deviceId: string; json: string }> = [];
  readonly clientAttributes: Array<{ deviceId: string; json: string }> = [];
  readonly rpcReplies: Array<{ deviceId: string; requestId: number; payload: string }> = [];
  readonly provisionRequests: ProvisionRequest[] = [];
  readonly sessions: OpenSession[] = [];
  attributes: { client?: Record<string, unknown>; shared?: Record<string, unknown> } = {};
  attributeQueries: Array<[string[] | undefined, string[] | undefined]> = [];
  /** While set, telemetry commits wait for it (tests "PUBACK only after commit"). */
  commitGate: Promise<void> | undefined;
  authGate: Promise<void> | undefined;
  authCalls = 0;
  /** Telemetry calls begun (committed or not). */
  telemetryStarted = 0;

  addDevice(token: string, name = `device-${token}`): DeviceIdentity {
    const identity: DeviceIdentity = { deviceId: `id-${token}`, tenantId: 't', deviceName: name, profileId: 'p', credentialsType: 'ACCESS_TOKEN' };
    this.devices.set(token, identity);
    return identity;
  }

  /** Sessions of a device that subscribed to shared attributes / RPC. */
  openSessions(deviceId: string): OpenSession[] {
    return this.sessions.filter((s) => !s.closed && s.device.deviceId === deviceId);
  }

  pushAttributes(deviceId: string, update: Record<string, unknown>): number {
    let n = 0;
    for (const s of this.openSessions(deviceId)) if (s.handlers.onAttributes) (s.handlers.onAttributes(update), n++);
    return n;
  }

  pushRpc(deviceId: string, rpc: RpcDelivery): Promise<void>[] {
    return this.openSessions(deviceId).flatMap((s) => (s.handlers.onRpc ? [s.handlers.onRpc(rpc)] : []));
  }

  asCore(): Core {
    const self = this;
    const parse = (json: string | Buffer) => {
      try {
        return JSON.parse(json.toString());
      } catch {
        throw new FleetgateError('MALFORMED_PAYLOAD', 'bad json');
      }
    };
    return {
      provisioning: {
        async provision(request: ProvisionRequest): Promise<ProvisionResult> {
          self.provisionRequests.push(request);
          if (request.provisionDeviceKey === 'key' && request.provisionDeviceSecret === 'secret') {
            const token = `tok-${self.provisionRequests.length}`;
            self.addDevice(token, request.deviceName ?? 'generated');
            return { status: 'SUCCESS', credentialsType: 'ACCESS_TOKEN', credentialsValue: token, deviceId: `id-${token}`, deviceName: request.deviceName ?? 'generated' };
          }
          return { status: 'NOT_FOUND', reason: 'BAD_KEY_OR_SECRET', errorMsg: 'Provision data was not found!' };
        },
      },
      auth: {
        async byAccessToken(token: string) {
          return self.devices.get(token);
        },
        async byMqttCredentials(clientId: string, username?: string, password?: Buffer | string) {
          self.authCalls++;
          if (self.authGate) await self.authGate;
          const device = username ? self.devices.get(username) : undefined;
          if (device) return device;
          if (username || password) throw new FleetgateError('BAD_USERNAME_OR_PASSWORD', 'bad');
          if (clientId) throw new FleetgateError('CLIENT_ID_REJECTED', 'bad');
          throw new FleetgateError('UNAUTHORIZED', 'bad');
        },
        async byX509Hash() {
          return undefined;
        },
      },
      telemetry: {
        async ingestJson(device: DeviceIdentity, json: string | Buffer) {
          self.telemetryStarted++;
          parse(json);
          if (self.commitGate) await self.commitGate;
          self.telemetry.push({ deviceId: device.deviceId, json: json.toString() });
        },
        async saveClientAttributesJson(device: DeviceIdentity, json: string | Buffer) {
          const value = parse(json);
          if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FleetgateError('INVALID_ARGUMENT', 'not an object');
          self.clientAttributes.push({ deviceId: device.deviceId, json: json.toString() });
        },
      },
      attributes: {
        async getForDevice(_deviceId: string, clientKeys?: string[], sharedKeys?: string[]) {
          self.attributeQueries.push([clientKeys, sharedKeys]);
          return self.attributes;
        },
      },
      rpc: {
        async reply(deviceId: string, requestId: number, payload: string) {
          self.rpcReplies.push({ deviceId, requestId, payload });
        },
      },
      sessions: {
        open(device: DeviceIdentity, handlers: SessionHandlers) {
          const session: OpenSession = { device, handlers, closed: false };
          self.sessions.push(session);
          return {
            update(h: SessionHandlers) {
              session.handlers = h;
            },
            close() {
              session.closed = true;
            },
          };
        },
        count: () => self.sessions.filter((s) => !s.closed).length,
      },
    } as unknown as Core;
  }
}

/** A server-side connection over an in-memory duplex, and the client end speaking `version`. */
export function connectInMemory(core: FakeCore, version: 3 | 4 | 5 = 4, limits: Partial<MqttLimits> = {}): { conn: MqttConnection; client: WireClient } {
  const [serverEnd, clientEnd] = duplexPair();
  const conn = new MqttConnection(serverEnd, { core: core.asCore(), logger: silentLogger, limits: { ...DEFAULT_MQTT_LIMITS, ...limits } }, 'in-memory');
  return { conn, client: new WireClient(clientEnd, version) };
}
