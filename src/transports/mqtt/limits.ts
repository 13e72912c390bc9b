/**
 * Tunables of the MQTT transport. Defaults follow ThingsBoard (spec §10) where it has one.
 */

/** Limits and timeouts of the MQTT transport; every field has a default in DEFAULT_MQTT_LIMITS. */
export interface MqttLimits {
  /** Largest MQTT packet accepted and advertised in the v5 CONNACK, bytes (spec §10: 65536). */
  maxPacketSize: number;
  /** Inbound topic aliases a v5 client may use (CONNACK Topic Alias Maximum). */
  topicAliasMaximum: number;
  /** Time a new connection has to send CONNECT, ms (spec §10: MQTT timeout 10000). */
  connectTimeoutMs: number;
  /** Packets held while CONNECT is being authenticated (spec §8.1: 100). */
  maxQueuedBeforeConnack: number;
  /** Unfinished PUBLISH packets per connection before reading from it pauses (getSessionLimits maxInflightMessages). */
  maxInflight: number;
  /** Bytes queued for a client that does not read before it is disconnected as a slow consumer. */
  maxWriteBuffer: number;
  /** Outbound QoS 1 messages awaiting PUBACK per connection. */
  maxOutboundInflight: number;
  /** A provision session closes this long after its first answer, ms (spec §5.2: 60 s). */
  provisionSessionTtlMs: number;
  /** Longest wait for core to answer a provisioning request, ms (spec §1: 10000). */
  provisionTimeoutMs: number;
  /** Client-side RPC without a handler answers `{"error":"timeout"}` after this, ms (spec §10: 60000). */
  clientRpcTimeoutMs: number;
  /** Grace period for flushing a closing connection before it is destroyed, ms (spec §10: 1000). */
  disconnectTimeoutMs: number;
  /** Open connections beyond which a new one is refused: CONNACK 0x89 server busy (v5) / 3 (v3). 0 = no limit. */
  maxConnections: number;
  /**
   * New connections per source address, `capacity:seconds` pairs (spec §10 style); past it CONNACK 0x9F connection
   * rate exceeded (v5) / 3 (v3). Empty = no limit (ThingsBoard has none).
   */
  connectRatePerSource: string;
}

/** Default limits. */
export const DEFAULT_MQTT_LIMITS: MqttLimits = {
  maxPacketSize: 65536,
  topicAliasMaximum: 10,
  connectTimeoutMs: 10_000,
  maxQueuedBeforeConnack: 100,
  maxInflight: 100,
  maxWriteBuffer: 1024 * 1024,
  maxOutboundInflight: 1000,
  provisionSessionTtlMs: 60_000,
  provisionTimeoutMs: 10_000,
  clientRpcTimeoutMs: 60_000,
  disconnectTimeoutMs: 1000,
  maxConnections: 50_000,
  connectRatePerSource: '',
};

