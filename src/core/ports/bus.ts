/**
 * The bus port: delivers server -> device messages to the node that holds the device's session, and
 * device replies back to the node that waits for them. In-memory for one node; Redis for a cluster.
 */
/** Receives the messages of a channel; `channel` is the one subscribed (one handler may serve many channels). */
export type BusHandler = (message: BusMessage, channel: string) => void;

export type BusMessage =
  | { kind: 'attributes'; deviceId: string; update: Record<string, unknown> }
  | { kind: 'rpc'; deviceId: string; rpcId: string }
  | { kind: 'device-deleted'; deviceId: string }
  | DeviceUpdated
  | { kind: 'rpc-reply'; rpcId: string; status: 'DELIVERED' | 'SUCCESSFUL' | 'FAILED'; response: string | null }
  | { kind: 'credentials-changed'; credentialsId: string; deviceId: string }
  /** On the device's channel: sessions authenticated with `credentialsId` end (the credentials were replaced). */
  | { kind: 'credentials-revoked'; credentialsId: string; deviceId: string }
  | { kind: 'profiles-changed' }
  /** Committed telemetry and attribute changes of one device, for live subscribers (src/core/live-updates.ts). */
  | { kind: 'live'; deviceId: string; committedAt: number; telemetry: LiveWirePoints; attributes: LiveWireAttributes[] }
  /** Which devices a node has live subscribers for; `full` replaces the node's whole set (src/core/live-interest.ts). */
  | { kind: 'live-interest'; nodeId: string; deviceIds: string[]; watching: boolean; full: boolean }
  /** A node that just started asks every other node to announce its whole set. */
  | { kind: 'live-interest-sync'; nodeId: string }
  | { kind: 'export-rules-changed' };

/**
 * On the credentials channel (every node): the device was renamed, moved to another profile, its gateway flag flipped or
 * it was handed to another gateway (`lastConnectedGateway`). Every node drops its cached logins of the device and its
 * open sessions of it take the new identity.
 */
export interface DeviceUpdated {
  kind: 'device-updated';
  deviceId: string;
  deviceName: string;
  profileId: string;
  lastConnectedGateway: string | null;
}

/** A KvValue as it crosses the bus: `[type, value]`, 64-bit LONGs as decimal text (JSON has no bigint). */
export type LiveWireValue = [type: string, value: string | number | boolean];

/**
 * Committed time series points, flat (no object per point, ingestion pays for every one): `ts, key, type, value`
 * repeated, in save order; `type` is the KvValue type, a LONG beyond 2^53 is decimal text.
 */
export type LiveWirePoints = (string | number | boolean)[];

/** One committed attribute write; a `null` value is a deleted key. */
export interface LiveWireAttributes {
  scope: string;
  ts: number;
  entries: [key: string, value: LiveWireValue | null][];
}


export interface Bus {
  /** Publishes to every subscriber of `channel` on every node. */
  publish(channel: string, message: BusMessage): Promise<void>;
  /** Subscribes this node to `channel`; returns the function that unsubscribes. */
  subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>>;
  /** Resolves when the bus can deliver messages now (GET /healthz); rejects with the reason otherwise. */
  ping(): Promise<void>;
  /**
   * Registers `listener` for the moment the bus is back after losing its connection: messages published meanwhile
   * may be lost, so whatever is persisted (pending RPCs, shared attributes) must be looked up again. `lostAt` is
   * Date.now() when the connection was lost (undefined if unknown). A bus that cannot lose messages never calls it.
   */
  onReconnect(listener: (lostAt: number | undefined) => void): void;
  close(): Promise<void>;
}

/** Channel names, in one place. */
export const channels = {
  device: (deviceId: string) => `device:${deviceId}`,
  rpcReply: (rpcId: string) => `rpc-reply:${rpcId}`,
  credentials: 'credentials',
  /** Committed changes of one device, published only while some node has a live subscriber for it. */
  live: (deviceId: string) => `live:${deviceId}`,
  liveInterest: 'live-interest',
} as const;
