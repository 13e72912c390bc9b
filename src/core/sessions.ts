/**
 * Live device sessions on this node. The first session of a device subscribes this node to the device's bus
 * channel; messages on it (shared-attribute updates, RPCs) reach every session of the device that asked for them.
 */
import type { AttributeUpdate, DeviceIdentity, DeviceSessionHandle, SessionHandlers, SessionsApi } from './api.ts';
import type { CoreLogger } from './core-types.ts';
import { channels, type Bus, type BusMessage } from '../bus/bus.ts';

/** One transport session as core tracks it. */
export class DeviceSession implements DeviceSessionHandle {
  handlers: SessionHandlers;
  /** RPC ids already handed to this session, so a re-delivery does not repeat one. */
  readonly deliveredRpc = new Set<string>();
  closed = false;

  constructor(
    readonly identity: DeviceIdentity,
    handlers: SessionHandlers,
    private readonly registry: SessionRegistry,
  ) {
    this.handlers = { ...handlers };
  }

  update(handlers: SessionHandlers): void {
    const rpcAdded = !this.handlers.onRpc && !!handlers.onRpc;
    this.handlers = { ...handlers };
    if (rpcAdded) this.registry.rpcSubscribed(this);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.registry.remove(this);
  }
}

interface DeviceEntry {
  sessions: Set<DeviceSession>;
  unsubscribe: Promise<() => Promise<void>>;
}

export class SessionRegistry implements SessionsApi {
  private readonly devices = new Map<string, DeviceEntry>();
  private total = 0;
  /** Set by the RPC service: delivers RPC `rpcId` to the given sessions, or the device's pending RPCs when rpcId is undefined. */
  deliverRpc: (sessions: DeviceSession[], rpcId: string | undefined) => void = () => {};
  /** Set by core: a device's first session on this node opened / its last one closed (device activity). */
  onDeviceOpened: (deviceId: string) => void = () => {};
  onDeviceClosed: (deviceId: string) => void = () => {};

  constructor(
    private readonly bus: Bus,
    private readonly logger: CoreLogger,
  ) {
    bus.onReconnect(() => this.redeliverPending());
  }

  /** After a bus outage: RPCs published meanwhile never arrived, so every RPC session looks up its device's pending ones. */
  private redeliverPending(): void {
    for (const entry of this.devices.values()) {
      const sessions = [...entry.sessions].filter((s) => s.handlers.onRpc);
      if (sessions.length > 0) this.deliverRpc(sessions, undefined);
    }
  }

  open(identity: DeviceIdentity, handlers: SessionHandlers): DeviceSession {
    const session = new DeviceSession(identity, handlers, this);
    let entry = this.devices.get(identity.deviceId);
    if (!entry) {
      const deviceId = identity.deviceId;
      entry = { sessions: new Set(), unsubscribe: this.bus.subscribe(channels.device(deviceId), (m) => this.onMessage(deviceId, m)) };
      entry.unsubscribe.catch((err) => this.logger.error({ err, deviceId }, 'bus subscribe failed'));
      this.devices.set(deviceId, entry);
      this.onDeviceOpened(deviceId);
    }
    entry.sessions.add(session);
    this.total++;
    if (handlers.onRpc) this.rpcSubscribed(session);
    return session;
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
    return [...(this.devices.get(deviceId)?.sessions ?? [])];
  }

  rpcSubscribed(session: DeviceSession): void {
    // Let the bus subscription settle first so nothing published meanwhile is missed.
    void this.devices.get(session.identity.deviceId)?.unsubscribe.then(() => this.deliverRpc([session], undefined));
  }

  remove(session: DeviceSession): void {
    const entry = this.devices.get(session.identity.deviceId);
    if (!entry || !entry.sessions.delete(session)) return;
    this.total--;
    if (entry.sessions.size === 0) {
      this.devices.delete(session.identity.deviceId);
      this.onDeviceClosed(session.identity.deviceId);
      void entry.unsubscribe.then((unsub) => unsub()).catch(() => {});
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

  private safely(deviceId: string, run: () => void): void {
    try {
      run();
    } catch (err) {
      this.logger.warn({ err, deviceId }, 'session end failed');
    }
  }

  private onMessage(deviceId: string, message: BusMessage): void {
    if (message.kind === 'attributes') this.pushAttributes(deviceId, message.update);
    else if (message.kind === 'rpc') this.deliverRpc(this.sessionsOf(deviceId).filter((s) => s.handlers.onRpc), message.rpcId);
    else if (message.kind === 'device-deleted') {
      for (const s of this.sessionsOf(deviceId)) s.handlers.onDeviceDeleted?.();
    } else if (message.kind === 'credentials-revoked') {
      for (const s of this.sessionsOf(deviceId)) {
        const used = s.identity.credentialsId;
        if (used === undefined || used === message.credentialsId) this.safely(deviceId, () => s.handlers.onCredentialsRevoked?.());
      }
    }
  }
}
