/**
 * Export rules: created, changed and deleted through the admin API, cached on every node (refreshed through the bus),
 * and matched against each message kind and device profile.
 */
import { badRequest, FleetgateError, notFound } from '../errors.ts';
import { newId } from '../ids.ts';
import type { ExportStore } from '../ports/export-store.ts';
import { DEFAULT_EXPORT_LANES, EXPORT_KINDS, EXPORT_MAX_LANES, type ExportDestination, type ExportKind, type ExportRule } from './model.ts';

/** What an administrator sends to create or change a rule (secrets included; they are never sent back). */
export interface ExportRuleInput {
  name?: unknown;
  profileId?: unknown;
  kinds?: unknown;
  destination?: unknown;
  enabled?: unknown;
  /** Delivery lanes, 1..16 (DEFAULT_EXPORT_LANES when a new rule leaves it out). */
  lanes?: unknown;
}

const MAX_BATCH = 10_000;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function positiveInt(value: unknown, name: string, fallback: number, max: number): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) throw badRequest(`${name} must be an integer from 1 to ${max}`);
  return value;
}

function url(value: unknown, protocols: string[], name: string): string {
  if (typeof value !== 'string') throw badRequest(`${name} is required`);
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw badRequest(`${name} is not a URL: ${value}`);
  }
  if (!protocols.includes(parsed.protocol)) throw badRequest(`${name} must start with ${protocols.map((p) => `${p}//`).join(' or ')}`);
  return value;
}

/** Checks a destination; `previous` keeps secrets the input leaves out (GET answers them masked). */
export function parseDestination(value: unknown, previous?: ExportDestination): ExportDestination {
  if (!isRecord(value)) throw badRequest('destination is required: {"type":"webhook",...} or {"type":"redis-stream",...}');
  const batchSize = positiveInt(value.batchSize, 'destination.batchSize', 100, MAX_BATCH);
  const timeoutMs = positiveInt(value.timeoutMs, 'destination.timeoutMs', 10_000, 600_000);
  if (value.type === 'webhook') {
    const headers: Record<string, string> = {};
    if (value.headers !== undefined && value.headers !== null) {
      if (!isRecord(value.headers)) throw badRequest('destination.headers must be an object of strings');
      for (const [k, v] of Object.entries(value.headers)) {
        if (typeof v !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k) || /[\r\n]/.test(v)) throw badRequest(`destination.headers.${k} is not a valid header`);
        headers[k] = v;
      }
    }
    const prevSecret = previous?.type === 'webhook' ? previous.secret : null;
    const secret = value.secret === undefined ? prevSecret : value.secret === null || value.secret === '' ? null : value.secret;
    if (secret !== null && typeof secret !== 'string') throw badRequest('destination.secret must be a string');
    return { type: 'webhook', url: url(value.url, ['http:', 'https:'], 'destination.url'), headers, secret, batchSize, timeoutMs };
  }
  if (value.type === 'redis-stream') {
    if (typeof value.stream !== 'string' || value.stream === '' || value.stream.length > 512) throw badRequest('destination.stream is required (a Redis key)');
    const maxLen = value.maxLen === undefined || value.maxLen === null ? 0 : value.maxLen;
    if (typeof maxLen !== 'number' || !Number.isInteger(maxLen) || maxLen < 0) throw badRequest('destination.maxLen must be an integer >= 0');
    const prevUrl = previous?.type === 'redis-stream' ? previous.url : undefined;
    const redisUrl = value.url === undefined && prevUrl ? prevUrl : url(value.url, ['redis:', 'rediss:'], 'destination.url');
    return { type: 'redis-stream', url: redisUrl, stream: value.stream, maxLen, batchSize, timeoutMs };
  }
  throw badRequest(`destination.type must be "webhook" or "redis-stream"`);
}

/** The destination without its secrets (webhook secret and header values, the password in a Redis URL). */
export function maskedDestination(d: ExportDestination): Record<string, unknown> {
  if (d.type === 'webhook') {
    return { ...d, secret: d.secret === null ? null : '********', headers: Object.fromEntries(Object.keys(d.headers).map((k) => [k, '********'])) };
  }
  const u = new URL(d.url);
  if (u.password) u.password = '********';
  return { ...d, url: u.toString() };
}

export class ExportRules {
  private rules: ExportRule[] = [];
  /** Rules by kind: what the hot paths look up. */
  private byKind = new Map<ExportKind, ExportRule[]>();

  constructor(
    private readonly store: { exports: ExportStore },
    private readonly profileExists: (tenantId: string, id: string) => Promise<boolean>,
    private readonly changed: () => Promise<void>,
  ) {}

  /** Reads every rule again (at start, and when another node says they changed). */
  async reload(): Promise<void> {
    this.use(await this.store.exports.listRules());
  }

  private use(rules: ExportRule[]): void {
    this.rules = rules;
    const byKind = new Map<ExportKind, ExportRule[]>();
    for (const r of rules) if (r.enabled) for (const k of r.kinds) byKind.set(k, [...(byKind.get(k) ?? []), r]);
    this.byKind = byKind;
  }

  /** True when some enabled rule exports `kind`. */
  wants(kind: ExportKind): boolean {
    return this.byKind.has(kind);
  }

  /** The enabled rules that export `kind` for a device of `profileId`. */
  matching(kind: ExportKind, tenantId: string, profileId: string): ExportRule[] {
    const rules = this.byKind.get(kind);
    if (!rules) return [];
    return rules.filter((r) => r.tenantId === tenantId && (r.profileId === null || r.profileId === profileId));
  }

  all(): readonly ExportRule[] {
    return this.rules;
  }

  list(tenantId: string): ExportRule[] {
    return this.rules.filter((r) => r.tenantId === tenantId);
  }

  async get(tenantId: string, id: string): Promise<ExportRule> {
    const rule = await this.store.exports.getRule(tenantId, id);
    if (!rule) throw notFound(`Export rule with id [${id}] is not found`);
    return rule;
  }

  /** Creates a rule, or changes rule `id`. */
  async save(tenantId: string, input: ExportRuleInput, id?: string): Promise<ExportRule> {
    const previous = id ? await this.get(tenantId, id) : undefined;
    const name = input.name ?? previous?.name;
    if (typeof name !== 'string' || name.trim() === '' || name.length > 255) throw badRequest('name is required (at most 255 characters)');
    const profileId = input.profileId === undefined ? (previous?.profileId ?? null) : input.profileId;
    if (profileId !== null && (typeof profileId !== 'string' || !(await this.profileExists(tenantId, profileId)))) throw badRequest(`Device profile with id [${String(profileId)}] is not found`);
    const kinds = input.kinds ?? previous?.kinds;
    if (!Array.isArray(kinds) || kinds.length === 0 || !kinds.every((k) => (EXPORT_KINDS as readonly unknown[]).includes(k))) {
      throw badRequest(`kinds must be a non-empty list of: ${EXPORT_KINDS.join(', ')}`);
    }
    const enabled = input.enabled ?? previous?.enabled ?? true;
    if (typeof enabled !== 'boolean') throw badRequest('enabled must be true or false');
    const destination = input.destination === undefined && previous ? previous.destination : parseDestination(input.destination, previous?.destination);
    const lanes = positiveInt(input.lanes, 'lanes', previous?.lanes ?? DEFAULT_EXPORT_LANES, EXPORT_MAX_LANES);
    const rule: ExportRule = {
      id: previous?.id ?? newId(),
      tenantId,
      name: name.trim(),
      profileId,
      kinds: [...new Set(kinds as ExportKind[])],
      destination,
      enabled,
      createdTime: previous?.createdTime ?? Date.now(),
      lanes,
      laneBase: previous?.laneBase ?? 0,
    };
    try {
      if (!previous) await this.store.exports.insertRule(rule);
      else {
        const waiting = await this.store.exports.updateRule(rule);
        if (waiting > 0) {
          throw badRequest(
            `lanes of export rule '${previous.name}' cannot change yet: ${waiting} messages from before its last change of lanes are still waiting to be delivered (they go first, to keep each device's order); try again once they are`,
          );
        }
      }
    } catch (err) {
      if (/export_rule_name_unq|export_rule\.tenant_id, export_rule\.name/.test(String((err as Error)?.message) + String((err as { constraint?: string })?.constraint))) {
        throw new FleetgateError('ALREADY_EXISTS', `An export rule named '${rule.name}' already exists`);
      }
      throw err;
    }
    await this.reload();
    await this.changed();
    return this.rules.find((r) => r.id === rule.id) ?? rule;
  }

  async delete(tenantId: string, id: string): Promise<ExportRule> {
    const rule = await this.get(tenantId, id);
    await this.store.exports.deleteRule(tenantId, id);
    await this.reload();
    await this.changed();
    return rule;
  }
}
