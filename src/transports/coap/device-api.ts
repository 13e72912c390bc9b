/**
 * The CoAP device API `coap://host/api/v1/{token}/{feature}` (spec §8.4) as calls into core.
 */
import { stringify } from 'lossless-json';
import type { DeviceIdentity } from '../../core/api.ts';
import type { Core } from '../../core/core-types.ts';
import { FleetgateError } from '../../core/errors.ts';
import { kvToJson } from '../../core/kv-json.ts';
import { answerClientRpc, parseClientRpc } from '../../core/client-rpc.ts';
import { renderRotationJson } from '../../core/provisioning/rotation.ts';
import type { ObserveRegistry, Endpoint, Observer } from './observe.ts';
import { codeReply, diagnosticReply, emptyReply, errorReply, jsonReply, methodNotAllowed } from './replies.ts';
import type { Feature } from './routes.ts';
import type { CoapReply } from './wire.ts';

/** One device API request, as the transport parsed it. */
export interface DeviceRequest {
  method: string;
  token: string;
  feature: Feature;
  id?: string;
  payload: Buffer;
  query: ReadonlyMap<string, string>;
  /** RFC 7641 Observe option value, undefined when absent. */
  observe?: number;
  endpoint: Endpoint;
  /** The request's token (observations are keyed by it). */
  coapToken: Buffer;
  confirmable: boolean;
  /** Uri-Path segments joined with '/' (block requests for large notifications name it, RFC 7959 §2.6). */
  path: string;
  /** RFC 7959 §2.6: the block size asked for by a Block2 option on the registration. */
  blockSize?: number;
}

/** A plain answer, or a new observation whose first notification the transport sends. */
export type DeviceOutcome = { kind: 'reply'; reply: CoapReply } | { kind: 'observe'; observer: Observer; initial: CoapReply; started: () => void };

const reply = (r: CoapReply): DeviceOutcome => ({ kind: 'reply', reply: r });
const json = (value: unknown) => stringify(value) ?? 'null';

/** The resource a request addressed, for diagnostics (the token is not repeated). */
const pathOf = (req: DeviceRequest) => `/api/v1/{token}/${req.feature}${req.id !== undefined ? '/{id}' : ''}`;

/** spec §8.2: comma-separated key lists; an absent or empty parameter means "not given". */
function keyList(query: ReadonlyMap<string, string>, name: string): string[] | undefined {
  const raw = query.get(name);
  if (raw === undefined || raw.trim() === '') return undefined;
  return raw.split(',').map((k) => k.trim()).filter((k) => k !== '');
}

/** spec §8.3/§8.4 RPC request id: a 32-bit integer. */
function rpcId(text: string): number {
  if (!/^[+-]?\d{1,10}$/.test(text) || Math.abs(Number(text)) > 2_147_483_647) throw new FleetgateError('INVALID_ARGUMENT', `Invalid RPC request id: ${text}`);
  return Number(text);
}

/** Handlers of the device API features. */
const credentialsReplaced = () => new FleetgateError('UNAUTHORIZED', 'Device credentials were replaced');
/** spec §8.3 (HTTP long poll `Device was deleted!`): the same error for an observation of a deleted device. */
const deviceDeleted = () => new FleetgateError('PERMISSION_DENIED', 'Device was deleted!');

export class CoapDeviceApi {
  constructor(
    private readonly core: Core,
    private readonly observers: ObserveRegistry,
    private readonly maxPayload: number,
  ) {}

  async handle(req: DeviceRequest): Promise<DeviceOutcome> {
    // RFC 7641 §3.6: a GET with Observe=1 removes the observation, then is processed as usual.
    if (req.method === 'GET' && req.observe === 1) this.observers.cancel(req.endpoint, req.coapToken);
    const device = await this.core.auth.byAccessToken(req.token, undefined, { transport: 'coap', address: req.endpoint.address });
    if (!device) return reply(codeReply('UNAUTHORIZED', 'Invalid access token')); // spec §8.4: 4.01 bad token
    switch (req.feature) {
      case 'telemetry':
        if (req.method === 'GET') return reply(codeReply('INVALID_ARGUMENT', 'GET is not supported on telemetry')); // spec §8.4
        if (req.method !== 'POST') return reply(methodNotAllowed(req.method, pathOf(req)));
        await this.core.telemetry.ingestJson(device, req.payload); // resolves after the commit
        return reply(emptyReply('2.01'));
      case 'attributes':
        if (req.method === 'POST') {
          await this.core.telemetry.saveClientAttributesJson(device, req.payload);
          return reply(emptyReply('2.01'));
        }
        if (req.method !== 'GET') return reply(methodNotAllowed(req.method, pathOf(req)));
        if (req.observe === 0) return this.observeAttributes(req, device);
        return reply(await this.attributeRequest(device, req.query));
      case 'rpc':
        return this.rpc(req, device, pathOf(req));
      case 'claim':
        if (req.method !== 'POST') return reply(methodNotAllowed(req.method, pathOf(req)));
        // ThingsBoard answers 2.01; fleetgate has no claiming yet and says so rather than pretend.
        return reply(diagnosticReply('5.01', 'Device claiming is not supported'));
      case 'credentials': {
        // README "Rotation and reprovisioning": 2.04 Changed with the new credentials, 4.00 with the FAILURE body.
        if (req.method !== 'POST') return reply(methodNotAllowed(req.method, pathOf(req)));
        const result = await this.core.rotation.rotate(device, { transport: 'coap', address: req.endpoint.address }, req.payload);
        return reply(jsonReply(result.status === 'SUCCESS' ? '2.04' : '4.00', renderRotationJson(result)));
      }
    }
  }

  /** spec §8.4: 2.05 `{"client":..,"shared":..}`, 4.04 when nothing matched. */
  private async attributeRequest(device: DeviceIdentity, query: ReadonlyMap<string, string>): Promise<CoapReply> {
    const result = await this.core.attributes.getForDevice(device.deviceId, keyList(query, 'clientKeys'), keyList(query, 'sharedKeys'));
    if (!result.client && !result.shared) return codeReply('NOT_FOUND', 'No attributes found');
    return jsonReply('2.05', json(result));
  }

  private async rpc(req: DeviceRequest, device: DeviceIdentity, path: string): Promise<DeviceOutcome> {
    if (req.id !== undefined) {
      if (req.method !== 'POST') return reply(methodNotAllowed(req.method, path));
      if (req.payload.length > this.maxPayload) return reply(codeReply('PAYLOAD_TOO_LARGE', 'RPC reply too large'));
      await this.core.rpc.reply(device.deviceId, rpcId(req.id), req.payload.toString('utf8'));
      return reply(emptyReply('2.01'));
    }
    if (req.method === 'GET') {
      if (req.observe === 0) return this.observeRpc(req, device);
      if (req.observe === 1) return reply(emptyReply('2.02')); // the observation is gone (spec §8.4)
      return reply(codeReply('INVALID_ARGUMENT', 'GET /rpc needs Observe=0 (server RPC is delivered as notifications)'));
    }
    if (req.method !== 'POST') return reply(methodNotAllowed(req.method, path));
    return reply(this.clientRpc(req.payload));
  }

  /**
   * Client-side RPC (spec §8.4: 2.05 with the reply), answered by core: `getSessionLimits`, or NOT_IMPLEMENTED (5.01)
   * at once for methods only a rule engine could answer, instead of a late timeout.
   */
  private clientRpc(payload: Buffer): CoapReply {
    try {
      // spec §8.2: maxInflightMessages keeps ThingsBoard's 100 (CoAP has no in-flight window; SDKs size queues from it).
      return jsonReply('2.05', json(answerClientRpc(parseClientRpc(payload), { maxPayloadSize: this.maxPayload, maxInflightMessages: 100 })));
    } catch (err) {
      return errorReply(err);
    }
  }

  /** spec §8.4: the initial notification is the current shared attributes, then each update. */
  private async observeAttributes(req: DeviceRequest, device: DeviceIdentity): Promise<DeviceOutcome> {
    const { observer, ready, started } = this.register(req, device, 'attributes');
    const session = this.core.sessions.open(device, {
      onAttributes: (update) => {
        void ready.then(() => this.observers.notify(observer, jsonReply('2.05', json(update)))).catch(() => {});
      },
      onCredentialsRevoked: () => this.endObservation(observer, ready, credentialsReplaced()),
      onDeviceDeleted: () => this.endObservation(observer, ready, deviceDeleted()),
    });
    observer.onClose = () => session.close();
    const current = async () => {
      const shared: Record<string, unknown> = {};
      for (const e of await this.core.attributes.get(device.deviceId, 'SHARED_SCOPE')) shared[e.key] = kvToJson(e.value);
      return jsonReply('2.05', json(shared));
    };
    // RFC 7641 §4.5: the liveness check of a quiet CON observer is the current state, like the initial notification.
    observer.current = current;
    try {
      return { kind: 'observe', observer, initial: await current(), started };
    } catch (err) {
      this.observers.remove(observer);
      throw err;
    }
  }

  /** spec §8.4: first 2.03 VALID, then each server RPC as a 2.05 notification `{"id","method","params"}`. */
  private observeRpc(req: DeviceRequest, device: DeviceIdentity): DeviceOutcome {
    const { observer, ready, started } = this.register(req, device, 'rpc');
    const session = this.core.sessions.open(device, {
      onCredentialsRevoked: () => this.endObservation(observer, ready, credentialsReplaced()),
      onDeviceDeleted: () => this.endObservation(observer, ready, deviceDeleted()),
      // Resolves when the client has the RPC (CON: ACKed; NON: sent), as SessionHandlers.onRpc asks.
      onRpc: (rpc) =>
        ready.then(() => this.observers.notify(observer, jsonReply('2.05', json({ id: rpc.requestId, method: rpc.method, params: rpc.params })))),
    });
    observer.onClose = () => session.close();
    // RFC 7641 §4.5 liveness check: the registration's 2.03 again ("no RPC pending"); an RPC is never repeated.
    observer.current = () => Promise.resolve(emptyReply('2.03'));
    return { kind: 'observe', observer, initial: emptyReply('2.03'), started };
  }

  /**
   * The device's credentials were replaced (4.01) or the device was deleted (4.03, as the HTTP long poll's 403): a last
   * error notification ends the observation (RFC 7641 §3.2).
   */
  private endObservation(observer: Observer, ready: Promise<void>, why: FleetgateError): void {
    const last = errorReply(why);
    void ready
      .then(() => this.observers.notify(observer, last))
      .catch(() => {})
      .finally(() => this.observers.remove(observer));
  }

  private register(req: DeviceRequest, device: DeviceIdentity, resource: 'attributes' | 'rpc') {
    let started!: () => void;
    const ready = new Promise<void>((resolve) => (started = resolve));
    const observer = this.observers.register({
      endpoint: req.endpoint,
      token: req.coapToken,
      resource,
      deviceId: device.deviceId,
      confirmable: req.confirmable,
      path: req.path,
      blockSize: req.blockSize,
    });
    return { observer, ready, started };
  }
}
