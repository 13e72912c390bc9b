/**
 * Data out (issue 16): export rules, the outbox rows written in the same transaction as the data they export, and
 * the messages delivered to a destination.
 */
import { readCompactRow } from './compact-telemetry.ts';
import { compactRowMessages, messageText, ruleNameJson, type BodyWriter } from './compact-body.ts';

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
  /**
   * Delivery lanes, 1..EXPORT_MAX_LANES: a device's messages all go to its lane (laneOf: its deviceHash mod `lanes`),
   * delivered in order; lanes are delivered side by side. Fewer lanes write fewer outbox rows a commit (less CPU); more lanes let a
   * message the destination keeps refusing hold back fewer devices until it is dead-lettered, and let more nodes share
   * the rule's delivery.
   */
  lanes: number;
  /**
   * The first lane's partition number: 0, or 16 after an odd number of changes of `lanes` (the store flips it, so the
   * lanes of the previous count drain before the new ones start: a device keeps its order across the change). Absent: 0.
   */
  laneBase?: number;
}

/**
 * One outbox row to write, for one rule: a message of `kind` about a device (or null), or (`messages` > 1) several
 * messages of `kind` of one commit and lane, devices in their lane's order.
 */
export interface OutboxEntry {
  ruleId: string;
  /** Delivery partition: hash of the device id, so one device's messages keep their order. */
  partition: number;
  /** The device; null for a message about none (a gap) and for a row of several messages. */
  deviceId: string | null;
  kind: ExportKind | 'gap';
  createdTime: number;
  /** The message's `data`, JSON; in a row of several, one line per message: device id, a tab, its `data` JSON. */
  payload: string;
  /** How many messages the row holds; absent = 1. */
  messages?: number;
  /**
   * Telemetry in the compact form (compact-telemetry.ts; `payload` is then empty): the points as numbers, the JSON
   * written at delivery. Null or absent: the row's messages are in `payload`.
   */
  points?: Buffer | null;
  /**
   * Its seq, set by a store that learns it when it writes the row (SQLite's group commit), once the transaction
   * committed: delivery then takes the row from memory instead of reading it back (ExportDelivery.remember).
   */
  seq?: number;
}

/** One message of an outbox row, with its id (unique, and the same each time the row is delivered). */
export interface OutboxMessage {
  id: string;
  deviceId: string | null;
  payload: string;
}

/** Joins messages of one lane into the payload of a row of several (JSON text never holds a raw tab or newline). */
export function packMessages(messages: readonly { deviceId: string; payload: string }[]): string {
  return messages.map((m) => `${m.deviceId}\t${m.payload}`).join('\n');
}

/** The messages of an outbox row: its own, or those packed in it (ids `<seq>.<n>`, n from 0), or its compact form's. */
export function unpackMessages(row: OutboxRow): OutboxMessage[] {
  if (row.points) {
    const messages = readCompactRow(row.points);
    if (messages.length === 1) return [{ id: String(row.seq), deviceId: messages[0].deviceId, payload: messages[0].data }];
    return messages.map((m, n) => ({ id: `${row.seq}.${n}`, deviceId: m.deviceId, payload: m.data }));
  }
  if ((row.messages ?? 1) <= 1) return [{ id: String(row.seq), deviceId: row.deviceId, payload: row.payload }];
  return row.payload.split('\n').map((line, n) => {
    const tab = line.indexOf('\t');
    return { id: `${row.seq}.${n}`, deviceId: line.slice(0, tab), payload: line.slice(tab + 1) };
  });
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
  readonly json: string;
  /** Bytes its JSON takes at most, when it can write them itself (writeTo). */
  readonly maxBytes?: number;
  /** About how many bytes its JSON takes, when it can write them itself (for sizing a body; maxBytes bounds it). */
  readonly likelyBytes?: number;
  /** Writes its JSON's UTF-8 bytes (the same as `json`'s) in one pass, without building the text (compact-body.ts). */
  writeTo?(w: BodyWriter): void;
}

/** The messages of an outbox row as delivered by rule `ruleName`. */
export function messagesOf(row: OutboxRow, ruleName: string): ExportMessage[] {
  const rule = ruleNameJson(ruleName);
  if (row.points) return compactRowMessages(row.points, row.seq, row.kind, row.createdTime, rule);
  return unpackMessages(row).map((m) => ({ id: m.id, json: messageText(m.id, rule, row.kind, m.deviceId, row.createdTime, m.payload) }));
}

/** Lanes a rule may have at most. */
export const EXPORT_MAX_LANES = 16;
/** The lanes of every rule created before `lanes` was a setting (migration 016 keeps them): partitionOf's 16. */
export const EXPORT_PARTITIONS = EXPORT_MAX_LANES;

/**
 * Lanes of a new rule that does not say: 4 (bench/RESULTS.md, "Data out: lanes per rule"). Each lane is a row per
 * commit for the ingest side to write and the delivery to read and delete, so fewer lanes cost less CPU a message; a
 * message the destination keeps refusing holds back a quarter of the devices until it is dead-lettered; and a node
 * delivers `exportConcurrency` (4) lanes at once, so one node can still deliver all of them in each round.
 */
export const DEFAULT_EXPORT_LANES = 4;

/** The hash that picks a device's lane (FNV-1a of its id, unsigned); 0 for no device. */
export function deviceHash(deviceId: string | null): number {
  if (deviceId === null) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < deviceId.length; i++) h = Math.imul(h ^ deviceId.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The partition (outbox `part`) of a device of `hash` (deviceHash) in `rule`'s lanes. */
export function laneOf(rule: Pick<ExportRule, 'lanes' | 'laneBase'>, hash: number): number {
  return (rule.laneBase ?? 0) + (hash % rule.lanes);
}

/** Whether partition `part` is one of `rule`'s current lanes (not one of an earlier lane count's). */
export function isCurrentLane(rule: Pick<ExportRule, 'lanes' | 'laneBase'>, part: number): boolean {
  const base = rule.laneBase ?? 0;
  return part >= base && part < base + rule.lanes;
}

/** The lane of a device among EXPORT_PARTITIONS (16) lanes: laneOf a rule of 16 lanes. */
export function partitionOf(deviceId: string | null): number {
  return deviceHash(deviceId) % EXPORT_PARTITIONS;
}
