/**
 * Data out (issue 16): export rules, the outbox rows written in the same transaction as the data they export, and
 * the messages delivered to a destination.
 */

/** What a rule can export. */
export const EXPORT_KINDS = ['telemetry', 'attributes', 'provisioning', 'connectivity', 'rpc'] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];

/** An HTTP(S) webhook: one POST per batch, a JSON array body, signed with HMAC-SHA256 when `secret` is set. */
export interface WebhookDestination {
  type: 'webhook';
  url: string;
  /** Extra request headers (e.g. an Authorization header of the receiver). */
  headers: Record<string, string>;
  /** HMAC-SHA256 key for the X-Fleetgate-Signature header; null for unsigned deliveries. */
  secret: string | null;
  /** Most messages per POST. */
  batchSize: number;
  /** A POST that takes longer fails and is retried, ms. */
  timeoutMs: number;
}

/** A Redis stream: one XADD per message (field `message`, the JSON), capped near `maxLen` entries. */
export interface RedisStreamDestination {
  type: 'redis-stream';
  url: string;
  stream: string;
  /** XADD MAXLEN ~ this; 0 = uncapped. */
  maxLen: number;
  batchSize: number;
  timeoutMs: number;
}

export type ExportDestination = WebhookDestination | RedisStreamDestination;

export interface ExportRule {
  id: string;
  tenantId: string;
  name: string;
  /** Only devices of this profile; null = every device. */
  profileId: string | null;
  kinds: ExportKind[];
  destination: ExportDestination;
  enabled: boolean;
  createdTime: number;
}

/** One outbox row to write: a message of `kind` about a device (or null), for one rule. */
export interface OutboxEntry {
  ruleId: string;
  /** Delivery partition: hash of the device id, so one device's messages keep their order. */
  partition: number;
  deviceId: string | null;
  kind: ExportKind | 'gap';
  createdTime: number;
  /** The message's `data`, JSON. */
  payload: string;
}

/** An outbox row as stored, with its insertion order. */
export interface OutboxRow extends OutboxEntry {
  seq: number;
}

/** A message that could not be delivered before its age ran out. */
export interface DeadLetter extends OutboxRow {
  attempts: number;
  lastError: string | null;
  deadTime: number;
}

/** Retry state of one (rule, partition) delivery lane. */
export interface ExportLane {
  ruleId: string;
  partition: number;
  owner: string | null;
  leaseUntil: number;
  attempts: number;
  nextAttemptTime: number;
  lastError: string | null;
}

/**
 * A message as a destination receives it (one element of a webhook body's array, one stream entry's `message` field):
 * `{"id","rule","kind","deviceId","ts","data"}`. `id` is unique and stable across redeliveries, so a receiver can drop
 * duplicates (delivery is at least once).
 */
export interface ExportMessage {
  id: string;
  /** The message as JSON text. */
  json: string;
}

/** The JSON text of an outbox row as delivered by rule `ruleName`. */
export function messageJson(row: OutboxRow, ruleName: string): string {
  return `{"id":"${row.seq}","rule":${JSON.stringify(ruleName)},"kind":"${row.kind}","deviceId":${row.deviceId === null ? 'null' : JSON.stringify(row.deviceId)},"ts":${row.createdTime},"data":${row.payload}}`;
}

/** Lanes per rule: messages of one device always share a lane, so they are delivered in order. */
export const EXPORT_PARTITIONS = 16;

/** The lane of a device (FNV-1a of its id). */
export function partitionOf(deviceId: string | null): number {
  if (deviceId === null) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < deviceId.length; i++) h = Math.imul(h ^ deviceId.charCodeAt(i), 0x01000193);
  return (h >>> 0) % EXPORT_PARTITIONS;
}
