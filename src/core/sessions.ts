/**
 * Live device sessions on this node. The first session of a device subscribes this node to the device's bus
 * channel; messages on it (shared-attribute updates, RPCs) reach every session of the device that asked for them.
 */
import type { AttributeUpdate, DeviceIdentity, DeviceSessionHandle, SessionHandlers, SessionsApi } from './api.ts';
import type { CoreLogger } from './core-types.ts';
import { channels, type Bus, type BusMessage, type DeviceUpdated } from './ports/bus.ts';
import { isDependencyUnavailable } from './errors.ts';

/**
 * One transport session as core tracks it. The handlers object is kept as given (not copied), so a transport may pass
 * an object whose handlers are methods (called on that object) and set or clear `onAttributes`/`onRpc` on it before
 * calling `update` with it again.
 */
export class DeviceSession implements DeviceSessionHandle {
  /** RPC ids already handed to this session, so a re-delivery does not repeat one (made on the first RPC). */
  deliveredRpc: Set<string> | undefined = undefined;
  closed = false;
  /** Whether the handlers had onRpc at the last open/update (an update that adds it delivers pending RPCs). */
  private rpcWanted: boolean;

  constructor(
    /** Who the session stands for; replaced (never changed in place) when the device is renamed or moves profile. */
    public identity: DeviceIdentity,
    public handlers: SessionHandlers,
    private readonly registry: SessionRegistry,
  ) {
    this.rpcWanted = !!handlers.onRpc;
  }

  update(handlers: SessionHandlers): void {
    const rpcAdded = !this.rpcWanted && !!handlers.onRpc;
    this.handlers = handlers;
    this.rpcWanted = !!handlers.onRpc;
    if (rpcAdded) this.registry.rpcSubscribed(this);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.registry.remove(this);
  }
}

/**
 * How far before the bus was lost attribute changes are pushed again: other nodes stamp their writes with their own
 * clocks, and a push of an unchanged value is harmless (it says the current value again).
 */
export const ATTRIBUTE_RESEND_MARGIN_MS = 5000;

const DEVICE_CHANNEL_PREFIX = channels.device('');

type Unsubscribe = () => Promise<void>;

/** Placeholder of a device entry until its bus subscription is made. */
const NOTHING_TO_UNSUBSCRIBE: Promise<Unsubscribe> = Promise.resolve(async () => {});

interface DeviceEntry {
  /** Usually one; an array costs far less than a Set for so few. */
  sessions: DeviceSession[];
  /**
   * The bus subscription: its promise until it resolves, then the unsubscribe function alone (issue 17 item 5: a
   * settled promise kept per connected device is 48 bytes for nothing). A failed one keeps its rejected promise.
   */
  unsubscribe: Promise<Unsubscribe> | Unsubscribe;
  /** The bus subscription failed (the bus was down): made again when the bus is back. */
  subscribeFailed?: boolean;
}

export class SessionRegistry implements SessionsApi {
  private readonly devices = new Map<string, DeviceEntry>();
  private total = 0;
  /** Set by the RPC service: delivers RPC `rpcId` to the given sessions, or the device's pending RPCs when rpcId is undefined. */
  deliverRpc: (sessions: DeviceSession[], rpcId: string | undefined) => void = () => {};
  /** Set by core: a device's first session on this node opened / its last one closed (device activity). */
  onDeviceOpened: (deviceId: string) => void = () => {};
  onDeviceClosed: (deviceId: string) => void = () => {};
  /** Set by the exporter: a device's first session on this node opened (CONNECT) or its last one closed (DISCONNECT). */
  onConnectivity: ((identity: DeviceIdentity, event: 'CONNECT' | 'DISCONNECT') => void) | undefined;
  /**
   * Set by core: pushes to the device's sessions the shared attributes changed since `since` (Date.now()), read from
   * the store, because their bus messages may have been lost in an outage.
   */
  resendAttributes: (deviceId: string, since: number) => void = () => {};

  /** The one bus handler of every device channel (not a closure per device): the device id is in the channel name. */
  private readonly onDeviceChannel = (message: BusMessage, channel: string): void => {
    this.onMessage(channel.slice(DEVICE_CHANNEL_PREFIX.length), message);
  };

  constructor(
    private readonly bus: Bus,
    private readonly logger: CoreLogger,
  ) {
    bus.onReconnect((lostAt) => this.redeliverPending(lostAt));
  }

  /**
   * After a bus outage: subscriptions that failed meanwhile are made again, and, as messages published meanwhile never
   * arrived, every RPC session looks up its device's pending RPCs, and every attribute session gets the shared
   * attributes changed since the bus was lost (minus ATTRIBUTE_RESEND_MARGIN_MS for clocks of other nodes).
   */
  private redeliverPending(lostAt: number | undefined): void {
    for (const [deviceId, entry] of this.devices) {
      if (lostAt !== undefined && entry.sessions.some((s) => s.handlers.onAttributes)) {
        this.resendAttributes(deviceId, lostAt - ATTRIBUTE_RESEND_MARGIN_MS);
      }
      if (entry.subscribeFailed) {
        entry.subscribeFailed = false;
        entry.unsubscribe = this.subscribeDevice(deviceId, entry);
        const sessions = entry.sessions.filter((s) => s.handlers.onRpc);
        if (sessions.length > 0) void Promise.resolve(entry.unsubscribe).then(() => this.deliverRpc(sessions, undefined), () => {});
        continue;
      }
      const sessions = entry.sessions.filter((s) => s.handlers.onRpc);
      if (sessions.length > 0) this.deliverRpc(sessions, undefined);
    }
  }

  open(identity: DeviceIdentity, handlers: SessionHandlers): DeviceSession {
    const session = new DeviceSession(identity, handlers, this);
    let entry = this.devices.get(identity.deviceId);
    if (!entry) {
      const deviceId = identity.deviceId;
      entry = { sessions: [session], unsubscribe: NOTHING_TO_UNSUBSCRIBE };
      entry.unsubscribe = this.subscribeDevice(deviceId, entry);
      this.devices.set(deviceId, entry);
      this.onDeviceOpened(deviceId);
      this.onConnectivity?.(identity, 'CONNECT');
    } else entry.sessions.push(session);
    this.total++;
    if (handlers.onRpc) this.rpcSubscribed(session);
    return session;
  }

  /** Subscribes this node to the device's channel; a failure is logged and marks the entry for the next reconnect. */
  private subscribeDevice(deviceId: string, entry: DeviceEntry): Promise<Unsubscribe> {
    const subscribed = this.bus.subscribe(channels.device(deviceId), this.onDeviceChannel);
    subscribed.then(
      (unsubscribe) => {
        if (entry.unsubscribe === subscribed) entry.unsubscribe = unsubscribe; // the promise is no longer kept
      },
      (err) => {
        entry.subscribeFailed = true;
        // An outage of the bus is logged once where it is noticed; anything else is worth a line per device.
        if (isDependencyUnavailable(err)) this.logger.debug({ err, deviceId }, 'bus subscribe failed; subscribing again when the bus is back');
        else this.logger.warn({ err, deviceId }, 'bus subscribe failed; subscribing again when the bus is back');
      },
    );
    return subscribed;
  }

  count(): number {
    return this.total;
  }

  /** Devices with at least one session on this node. */
  deviceIds(): IterableIterator<string> {
    return this.devices.keys();
  }

  /** Sessions of a device on this node. */
  sessionsOf(deviceId: string): DeviceSession[] {
    return this.devices.get(deviceId)?.sessions.slice() ?? [];
  }

  rpcSubscribed(session: DeviceSession): void {
    // Let the bus subscription settle first so nothing published meanwhile is missed. If it failed (the bus is
    // down), the reconnection subscribes again and looks up pending RPCs then.
    const entry = this.devices.get(session.identity.deviceId);
    if (!entry) return;
    void Promise.resolve(entry.unsubscribe).then(
      () => this.deliverRpc([session], undefined),
      () => {},
    );
  }

  remove(session: DeviceSession): void {
    const entry = this.devices.get(session.identity.deviceId);
    const at = entry ? entry.sessions.indexOf(session) : -1;
    if (!entry || at < 0) return;
    entry.sessions.splice(at, 1);
    this.total--;
    if (entry.sessions.length === 0) {
      this.devices.delete(session.identity.deviceId);
      this.onDeviceClosed(session.identity.deviceId);
      this.onConnectivity?.(session.identity, 'DISCONNECT');
      void Promise.resolve(entry.unsubscribe).then((unsub) => unsub()).catch(() => {});
    }
  }

  /** Pushes a shared-attribute update to this node's sessions of the device. */
  pushAttributes(deviceId: string, update: AttributeUpdate): void {
    for (const s of this.sessionsOf(deviceId)) {
      try {
        s.handlers.onAttributes?.(update);
      } catch (err) {
        this.logger.warn({ err, deviceId }, 'attribute push failed');
      }
    }
  }

  private safely(deviceId: string, run: () => void, failure = 'session end failed'): void {
    try {
      run();
    } catch (err) {
      this.logger.warn({ err, deviceId }, failure);
    }
  }

  private onMessage(deviceId: string, message: BusMessage): void {
    if (message.kind === 'attributes') this.pushAttributes(deviceId, message.update);
    else if (message.kind === 'rpc') this.deliverRpc(this.sessionsOf(deviceId).filter((s) => s.handlers.onRpc), message.rpcId);
    else if (message.kind === 'device-deleted') this.deviceDeleted(deviceId);
    else if (message.kind === 'credentials-revoked') this.credentialsRevoked(deviceId, message.credentialsId);
  }

  /** Sessions of the device that authenticated with `credentialsId` (or, not knowing with what, any) end. */
  credentialsRevoked(deviceId: string, credentialsId: string): void {
    for (const s of this.sessionsOf(deviceId)) {
      const used = s.identity.credentialsId;
      if (used === undefined || used === credentialsId) this.safely(deviceId, () => s.handlers.onCredentialsRevoked?.());
    }
  }

  /** The device was deleted (bus `device-deleted`, or found gone after a bus outage): this node's sessions of it end. */
  deviceDeleted(deviceId: string): void {
    for (const s of this.sessionsOf(deviceId)) this.safely(deviceId, () => s.handlers.onDeviceDeleted?.());
  }

  /** Every device with sessions on this node and its sessions (live arrays: copy before changing sessions). */
  *devicesWithSessions(): IterableIterator<[deviceId: string, sessions: readonly DeviceSession[]]> {
    for (const [deviceId, entry] of this.devices) yield [deviceId, entry.sessions];
  }

  /** The device was updated (bus `device-updated`, credentials channel): this node's sessions of it take the new identity. */
  deviceUpdated(update: DeviceUpdated): void {
    const entry = this.devices.get(update.deviceId);
    if (!entry) return;
    for (const s of entry.sessions.slice()) this.safely(update.deviceId, () => this.updateIdentity(s, update), 'session update failed');
  }

  /**
   * TB: an open session takes the updated device info (DeviceAwareSessionContext.onDeviceUpdate): later telemetry is
   * exported and matched by rules under the new name and profile. A new identity object, never the old one changed in
   * place: the auth cache and the export outbox hold the old one (the outbox notices a new object and notes it anew).
   */
  private updateIdentity(session: DeviceSession, update: DeviceUpdated): void {
    const current = session.identity;
    if (current.deviceName !== update.deviceName || current.profileId !== update.profileId) {
      session.identity = { ...current, deviceName: update.deviceName, profileId: update.profileId };
    }
    session.handlers.onDeviceUpdated?.(session.identity, update.lastConnectedGateway);
  }
}
