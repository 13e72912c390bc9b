/**
 * Turns what core writes into outbox rows for the matching export rules. Telemetry and client attributes are folded
 * into one row per device and rule per group-commit batch and travel in that batch's transaction; the other kinds are
 * written in the transaction of the change they report, or alone when nothing else is written (connectivity).
 */
import type { DeviceIdentity } from '../api.ts';
import { kvToJson } from '../kv-json.ts';
import type { AttributeWrite, TsPoint } from '../model.ts';
import type { WriteBatch } from '../ports/store.ts';
import { compactByDevice, compactRow, numbersHead, type RowDevice } from './compact-telemetry.ts';
import { deviceHash, laneOf, type ExportKind, type ExportRule, type OutboxEntry } from './model.ts';
import type { ExportRules } from './rules.ts';

/** Devices whose identity the outbox needs, kept for the batches still open (bounded: oldest dropped first). */
const IDENTITY_CAP = 200_000;

/** One rule's lane of a batch: its devices' parts of the rows. */
interface Lane {
  rule: ExportRule;
  partition: number;
  devices: RowDevice[];
}

/** Whether new outbox rows may be written (the disk budget); `skipped` counts what was left out while full. */
export interface OutboxBudget {
  full: boolean;
  skipped(ruleId: string, rows: number): void;
}

/**
 * A device's identity as last noted, with what its rows repeat computed once for it (not per batch): its message
 * prefix, its lane hash, and the head of its part of a row for the keys it last sent (a renamed device or one moved
 * to another profile is noted anew, so none of this outlives the identity it was made from).
 */
interface Noted {
  device: DeviceIdentity;
  prefix?: string;
  /** deviceHash: its lane in a rule is laneOf(rule, hash). */
  hash: number;
  head?: Buffer;
  headKeys?: string[];
}

export class OutboxBuilder {
  private readonly identities = new Map<string, Noted>();
  /** The identity object noteDevice saw last (its entry in `identities` holds it). */
  private lastNoted: DeviceIdentity | undefined;

  constructor(
    private readonly rules: ExportRules,
    private readonly budget: OutboxBudget,
  ) {}

  /** True when telemetry or attribute writes of this device may be exported: remember who it is for the batch. */
  noteDevice(device: DeviceIdentity, kind: 'telemetry' | 'attributes'): void {
    // The identity noted last, again (a socket read often holds several messages of one device): nothing to look up.
    // Any other identity noted since would have replaced `lastNoted`, so its entry is still this object.
    if (device === this.lastNoted) return;
    if (!this.rules.wants(kind)) return;
    const noted = this.identities.get(device.deviceId);
    this.lastNoted = device;
    // The same identity object (the session's): its prefix stays; a changed one (a rename, another profile) is noted anew.
    if (noted !== undefined && noted.device === device) return;
    if (noted === undefined && this.identities.size >= IDENTITY_CAP) this.identities.delete(this.identities.keys().next().value as string);
    this.identities.set(device.deviceId, { device, hash: deviceHash(device.deviceId) });
  }

  /** Adds the batch's outbox rows to it (the group committer calls this before the write). */
  decorate(batch: WriteBatch): void {
    const wantsTelemetry = this.rules.wants('telemetry') && batch.telemetry.length > 0;
    const wantsAttributes = this.rules.wants('attributes') && batch.attributes.length > 0;
    if (!wantsTelemetry && !wantsAttributes) return;
    const now = Date.now();
    const out: OutboxEntry[] = [];
    if (wantsTelemetry) this.telemetryRows(batch.telemetry, now, out);
    if (wantsAttributes) this.attributeRows(batch.attributes, now, out);
    if (out.length > 0) batch.outbox = out;
  }

  /**
   * Telemetry rows: the devices of one lane share a row per rule (a lane delivers its devices' messages in seq order,
   * so each device keeps its order), at most a batch of the rule's destination per row, in the compact form
   * (compact-telemetry.ts: the points as numbers; delivery writes the JSON).
   */
  private telemetryRows(points: readonly TsPoint[], now: number, out: OutboxEntry[]): void {
    // Each rule's lanes by partition (no key string made and hashed per device), and all lanes in order of their first device.
    const byRule = new Map<string, Lane[]>();
    const lanes: Lane[] = [];
    for (const [deviceId, numbers] of compactByDevice(points)) {
      const noted = this.identities.get(deviceId);
      if (!noted) continue;
      const device = noted.device;
      const rules = this.rules.matching('telemetry', device.tenantId, device.profileId);
      if (rules.length === 0) continue;
      // What JSON.stringify({ deviceName, profileId, telemetry }) gives before the telemetry array.
      const prefix = (noted.prefix ??= `{"deviceName":${JSON.stringify(device.deviceName)},"profileId":${JSON.stringify(device.profileId)},"telemetry":`);
      const hash = noted.hash;
      const head = numbers.ok ? headOf(noted, deviceId, prefix, numbers.keys) : undefined;
      for (const rule of rules) {
        if (this.budget.full) {
          this.budget.skipped(rule.id, 1);
          continue;
        }
        const partition = laneOf(rule, hash);
        let ofRule = byRule.get(rule.id);
        if (ofRule === undefined) byRule.set(rule.id, (ofRule = []));
        let lane = ofRule[partition];
        if (lane === undefined) lanes.push((ofRule[partition] = lane = { rule, partition, devices: [] }));
        lane.devices.push({ deviceId, prefix, numbers, head });
      }
    }
    for (const { rule, partition, devices } of lanes) {
      const perRow = Math.max(1, rule.destination.batchSize);
      for (let i = 0; i < devices.length; i += perRow) {
        const chunk = devices.slice(i, i + perRow);
        out.push({ ruleId: rule.id, partition, deviceId: chunk.length === 1 ? chunk[0].deviceId : null, kind: 'telemetry', createdTime: now, payload: '', points: compactRow(chunk), messages: chunk.length });
      }
    }
  }

  private attributeRows(writes: readonly AttributeWrite[], now: number, out: OutboxEntry[]): void {
    const byDevice = new Map<string, Record<string, unknown>>();
    for (const w of writes) {
      if (w.scope !== 'CLIENT_SCOPE') continue;
      let values = byDevice.get(w.deviceId);
      if (!values) byDevice.set(w.deviceId, (values = {}));
      for (const e of w.entries) values[e.key] = kvToJson(e.value);
    }
    for (const [deviceId, attributes] of byDevice) this.push('attributes', deviceId, now, { scope: 'CLIENT_SCOPE', attributes }, out);
  }

  private push(kind: 'telemetry' | 'attributes', deviceId: string, now: number, data: Record<string, unknown>, out: OutboxEntry[]): void {
    const noted = this.identities.get(deviceId);
    if (!noted) return;
    this.forDevice(kind, noted.device, now, data, out);
  }

  /** Outbox rows of one message about `device` for every rule that exports `kind` for its profile. */
  forDevice(kind: ExportKind, device: { deviceId: string | null; deviceName: string | null; tenantId: string; profileId: string }, ts: number, data: Record<string, unknown>, out: OutboxEntry[] = []): OutboxEntry[] {
    const rules = this.rules.matching(kind, device.tenantId, device.profileId);
    if (rules.length === 0) return out;
    this.rowsFor(rules, kind, device.deviceId, ts, JSON.stringify({ deviceName: device.deviceName, profileId: device.profileId, ...data }), out);
    return out;
  }

  private rowsFor(rules: readonly ExportRule[], kind: ExportKind, deviceId: string | null, ts: number, payload: string, out: OutboxEntry[]): void {
    const hash = deviceHash(deviceId);
    for (const rule of rules) {
      if (this.budget.full) {
        this.budget.skipped(rule.id, 1);
        continue;
      }
      out.push({ ruleId: rule.id, partition: laneOf(rule, hash), deviceId, kind, createdTime: ts, payload });
    }
  }
}

/** The head of a device's part of a row for `keys`: the one kept for it when its keys are the same, else a new one kept. */
function headOf(noted: Noted, deviceId: string, prefix: string, keys: readonly string[]): Buffer {
  const kept = noted.headKeys;
  if (noted.head !== undefined && kept !== undefined && kept.length === keys.length) {
    let same = true;
    for (let k = 0; k < keys.length; k++) if (kept[k] !== keys[k]) same = false;
    if (same) return noted.head;
  }
  noted.headKeys = keys.slice();
  return (noted.head = numbersHead(deviceId, prefix, keys));
}
