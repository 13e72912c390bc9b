/**
 * The bus port: delivers server -> device messages to the node that holds the device's session, and
 * device replies back to the node that waits for them. In-memory for one node; Redis for a cluster.
 */
export type BusHandler = (message: BusMessage) => void;

export type BusMessage =
  | { kind: 'attributes'; deviceId: string; update: Record<string, unknown> }
  | { kind: 'rpc'; deviceId: string; rpcId: string }
  | { kind: 'device-deleted'; deviceId: string }
  | { kind: 'rpc-reply'; rpcId: string; status: 'DELIVERED' | 'SUCCESSFUL' | 'FAILED'; response: string | null }
  | { kind: 'credentials-changed'; credentialsId: string; deviceId: string }
  | { kind: 'profiles-changed' };

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
} as const;
