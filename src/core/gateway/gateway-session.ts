/**
 * One gateway connection in core (gateway spec §4): the sub-devices it speaks for, each with a core device session
 * (so shared-attribute updates and RPCs for the sub-device reach the node holding the gateway's connection through the
 * bus, like any device's), and the `v1/gateway/*` uplinks turned into one group commit per message.
 */
import type { DeviceIdentity, DeviceSessionHandle, GatewayAttributeResponse, GatewaySessionHandle, GatewaySink } from '../api.ts';
import type { CoreLogger } from '../core-types.ts';
import { FleetgateError } from '../errors.ts';
import type { AttributeWrite, Device, TsPoint } from '../model.ts';
import { kvToJson as kvJson, objectToEntries, toKvValue } from '../kv-json.ts';
import { parseAttributeRequest, parseAttributesMessage, parseConnect, parseDisconnect, parseRpcReply, parseTelemetryMessage } from './gateway-json.ts';
import { subDeviceIdentity, type WantedDevice } from './sub-devices.ts';
import type { GatewayDeps, Gateways } from './gateways.ts';

/** RATE_LIMITED for one sub-device, naming it, so the transport can tell the gateway which device to slow down. */
export class SubDeviceRateLimited extends FleetgateError {
  constructor(
    readonly device: string,
    message: string,
    retryAfterSeconds: number,
  ) {
    super('RATE_LIMITED', message, { retryAfterSeconds });
  }
}

interface SubDevice {
  identity: DeviceIdentity;
  session: DeviceSessionHandle;
}

/** Core's side of one gateway connection; built by {@link Gateways.open}, closed with the connection. */
export class GatewaySession implements GatewaySessionHandle {
  /** Sub-devices with an open session on this connection, by the exact name the gateway uses (spec §3). */
  private readonly subs = new Map<string, SubDevice>();
  private closed = false;
  private started = false;

  constructor(
    private gateway: DeviceIdentity,
    private readonly sink: GatewaySink,
    private readonly deps: GatewayDeps,
    private readonly logger: CoreLogger,
  ) {}

  /** Opens sessions for the sub-devices with pending RPCs, so those are delivered now (issue 14 item 3). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.deps.store.listSubDevicesWithPendingRpc(this.gateway.deviceId, Date.now()).then(
      (devices) => {
        for (const device of devices) if (!this.subs.has(device.name)) this.openSession(device);
      },
      (err) => this.logger.warn({ err, gatewayId: this.gateway.deviceId }, 'gateway: pending sub-device RPC lookup failed'),
    );
  }

  subDevices(): string[] {
    return [...this.subs.keys()];
  }

  private openSession(device: Device): SubDevice {
    const identity = subDeviceIdentity(device);
    // The handlers read the sub-device's current name: a rename while open re-keys it (subDeviceUpdated).
    const sub: SubDevice = {
      identity,
      session: this.deps.sessions.open(identity, {
        onAttributes: (update) => this.sink.attributes(sub.identity.deviceName, update),
        onRpc: (rpc) => this.sink.rpc(sub.identity.deviceName, rpc),
        onDeviceDeleted: () => this.drop(sub.identity.deviceName, sub),
        onDeviceUpdated: (updated, owner) => this.subDeviceUpdated(sub, updated, owner),
        subDeviceOf: this.gateway.deviceId,
      }),
    };
    if (this.closed) sub.session.close();
    else this.subs.set(device.name, sub);
    return sub;
  }

  private drop(name: string, sub: SubDevice): void {
    if (this.subs.get(name) !== sub) return;
    this.subs.delete(name);
    sub.session.close();
  }

  /**
   * A sub-device open here was renamed, moved profile or handed over (admin API, any node). Handed to another gateway
   * (or to none): its session here ends, and the next message naming it is refused as any other gateway's device is.
   * Renamed: it is known here under the new name only (the gateway is told the rename, gateway spec §4.9, and uses the
   * new name from then on; a message under the old name is resolved by name again, as after a reconnect).
   */
  private subDeviceUpdated(sub: SubDevice, identity: DeviceIdentity, owner: string | null): void {
    const oldName = sub.identity.deviceName;
    if (this.subs.get(oldName) !== sub) return;
    if (owner !== this.gateway.deviceId) return this.drop(oldName, sub);
    sub.identity = identity;
    if (identity.deviceName === oldName) return;
    this.subs.delete(oldName);
    // Names are unique per tenant: an entry still under the new name is stale (its device was renamed away meanwhile).
    this.subs.get(identity.deviceName)?.session.close();
    this.subs.set(identity.deviceName, sub);
  }

  gatewayUpdated(identity: DeviceIdentity): void {
    this.gateway = identity;
  }

  /**
   * Identities for `wanted`: known ones from this connection, the rest found (or created) and given sessions. `check`
   * (the rate limit) sees every device that exists before any new one is created, so a refusal creates nothing.
   */
  private async identities(wanted: readonly WantedDevice[], create: boolean, check?: (ids: Iterable<DeviceIdentity>) => void): Promise<Map<string, DeviceIdentity>> {
    const out = new Map<string, DeviceIdentity>();
    const unknown: WantedDevice[] = [];
    for (const w of wanted) {
      const sub = this.subs.get(w.name);
      if (sub) out.set(w.name, sub.identity);
      else unknown.push(w);
    }
    check?.(out.values());
    if (unknown.length === 0) return out;
    const checked = new Set<string>();
    const beforeCreate =
      check &&
      ((found: Iterable<Device>) => {
        const ids = [...found].map(subDeviceIdentity);
        check(ids);
        for (const id of ids) checked.add(id.deviceId);
      });
    const devices = await this.deps.directory.resolve(this.gateway, unknown, create, beforeCreate);
    const created: DeviceIdentity[] = [];
    const opened: SubDevice[] = [];
    for (const w of unknown) {
      const device = devices.get(w.name);
      if (!device) throw new FleetgateError('NOT_FOUND', `Device "${w.name}" is not a sub-device of this gateway`);
      let sub = this.subs.get(w.name);
      if (!sub) opened.push((sub = this.openSession(device)));
      out.set(w.name, sub.identity);
      if (!checked.has(sub.identity.deviceId)) created.push(sub.identity);
    }
    check?.(created); // a new device's first message counts too (its fresh budget always has room for it)
    if (opened.length > 0) await this.catchUp(opened);
    return out;
  }

  /**
   * Sessions just opened from devices read by name: an update (rename, profile, owner) that passed between that read
   * and the open reached no session, so each device is read again by id now that its session hears updates. The
   * message being handled keeps the identity it was resolved to.
   */
  private async catchUp(opened: readonly SubDevice[]): Promise<void> {
    for (const sub of opened) {
      const name = sub.identity.deviceName;
      if (this.subs.get(name) !== sub) continue;
      const device = await this.deps.store.getDeviceById(sub.identity.deviceId);
      if (!device) {
        this.drop(name, sub); // deleted meanwhile
        continue;
      }
      const owner = typeof device.additionalInfo?.lastConnectedGateway === 'string' ? device.additionalInfo.lastConnectedGateway : null;
      if (device.name !== name || device.profileId !== sub.identity.profileId || owner !== this.gateway.deviceId) {
        this.subDeviceUpdated(sub, { ...sub.identity, deviceName: device.name, profileId: device.profileId }, owner);
      }
    }
  }

  /** Per-sub-device message rate (config deviceMessageRate): one limited sub-device refuses the message, not the gateway. */
  private readonly checkRate = (ids: Iterable<DeviceIdentity>): void => {
    const limiter = this.deps.throttle.deviceMessages;
    if (!limiter.enabled) return;
    for (const id of ids) {
      const wait = limiter.take(id.deviceId);
      if (wait > 0) {
        throw new SubDeviceRateLimited(id.deviceName, `Device "${id.deviceName}" is over its message rate limit (${this.deps.throttle.limits.deviceMessageRate})`, Math.max(1, Math.ceil(wait / 1000)));
      }
    }
  };

  async connect(payload: Buffer): Promise<void> {
    const { device, type } = parseConnect(payload, this.deps.limits);
    await this.identities([{ name: device, type }], true); // spec §2.2: a name already open here ignores `type`
  }

  async disconnect(payload: Buffer): Promise<void> {
    const name = parseDisconnect(payload, this.deps.limits);
    const sub = this.subs.get(name);
    if (sub) this.drop(name, sub); // spec §2.3: unknown names are acknowledged too
  }

  async telemetry(payload: Buffer): Promise<void> {
    const messages = parseTelemetryMessage(payload, this.deps.limits, Date.now());
    const ids = await this.identities(messages.map((m) => ({ name: m.device, type: 'default' })), true, this.checkRate);
    if (this.deps.noteExported) for (const id of ids.values()) this.deps.noteExported(id, 'telemetry');
    const points: TsPoint[] = [];
    for (const { device, samples } of messages) {
      const deviceId = ids.get(device)!.deviceId;
      for (const { ts, values } of samples) {
        for (const key of Object.keys(values)) {
          const value = toKvValue(values[key]);
          if (value) points.push({ deviceId, ts, key, value });
        }
      }
    }
    await this.deps.committer.submit(points, undefined, this.deps.countCommitted); // one commit, then one PUBACK
  }

  async attributes(payload: Buffer): Promise<void> {
    const messages = parseAttributesMessage(payload, this.deps.limits);
    const ids = await this.identities(messages.map((m) => ({ name: m.device, type: 'default' })), true, this.checkRate);
    if (this.deps.noteExported) for (const id of ids.values()) this.deps.noteExported(id, 'attributes');
    const ts = Date.now();
    const writes: AttributeWrite[] = messages.map(({ device, values }) => ({ deviceId: ids.get(device)!.deviceId, scope: 'CLIENT_SCOPE', entries: objectToEntries(values), ts }));
    await this.deps.committer.submit([], writes);
  }

  /**
   * spec §2.6: `client` true reads client attributes, false shared ones; one key asked for and found answers
   * `"value"`, otherwise `"values"` holds the keys found. `"keys":[]` answers every attribute of the scope.
   */
  async attributeRequest(payload: Buffer): Promise<GatewayAttributeResponse> {
    const request = parseAttributeRequest(payload, this.deps.limits);
    const ids = await this.identities([{ name: request.device, type: 'default' }], false);
    const deviceId = ids.get(request.device)!.deviceId;
    const entries = await this.deps.attributes.get(deviceId, request.client ? 'CLIENT_SCOPE' : 'SHARED_SCOPE', request.keys.length > 0 ? request.keys : undefined);
    const response: GatewayAttributeResponse = { id: request.id, device: request.device };
    const values: Record<string, unknown> = {};
    for (const e of entries) values[e.key] = kvJson(e.value);
    if (request.keys.length === 1 && entries.length === 1) response.value = values[entries[0].key];
    else if (entries.length > 0) response.values = values;
    return response;
  }

  async rpcReply(payload: Buffer): Promise<void> {
    const reply = parseRpcReply(payload, this.deps.limits);
    const ids = await this.identities([{ name: reply.device, type: 'default' }], false);
    await this.deps.rpc.reply(ids.get(reply.device)!.deviceId, reply.id, reply.data);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const sub of this.subs.values()) sub.session.close();
    this.subs.clear();
    this.logger.debug({ gatewayId: this.gateway.deviceId }, 'gateway session closed');
  }
}
