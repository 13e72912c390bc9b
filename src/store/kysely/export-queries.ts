/**
 * Data out (issue 16): export rules, the outbox, delivery lanes (lease + retry state per rule and partition) and dead
 * letters. Lanes are claimed with one conditional UPDATE; on PostgreSQL its candidate rows are picked with
 * `FOR UPDATE SKIP LOCKED`, so nodes claiming at once never wait on each other.
 */
import { CompiledQuery, sql, type Kysely, type Transaction } from 'kysely';
import { deviceHash, EXPORT_MAX_LANES, EXPORT_PARTITIONS, laneOf, unpackMessages, type DeadLetter, type ExportLane, type ExportRule, type OutboxEntry, type OutboxRow } from '../../core/export/model.ts';
import type { Page, PageQuery } from '../../core/model.ts';
import type { Dialect } from '../dialect.ts';
import type { Database, ExportDeadLetterTable, ExportLaneTable, ExportOutboxTable, ExportRuleTable } from '../schema.ts';
import { fetchPage } from './paging.ts';
import type { WriterOp, WriterResult } from '../sqlite-writer-thread.ts';

type Db = Kysely<Database> | Transaction<Database>;

const ruleToRow = (r: ExportRule): ExportRuleTable => ({
  id: r.id,
  tenant_id: r.tenantId,
  name: r.name,
  profile_id: r.profileId,
  kinds: JSON.stringify(r.kinds),
  destination: JSON.stringify(r.destination),
  enabled: r.enabled ? 1 : 0,
  created_time: r.createdTime,
  lanes: r.lanes,
  lane_base: r.laneBase ?? 0,
});

const rowToRule = (r: ExportRuleTable): ExportRule => ({
  id: r.id,
  tenantId: r.tenant_id,
  name: r.name,
  profileId: r.profile_id,
  kinds: JSON.parse(r.kinds),
  destination: JSON.parse(r.destination),
  enabled: Number(r.enabled) === 1,
  createdTime: Number(r.created_time),
  lanes: Number(r.lanes),
  laneBase: Number(r.lane_base),
});

const rowToOutbox = (r: Omit<ExportOutboxTable, 'seq' | 'messages' | 'points'> & { seq: number; messages?: number; points?: Uint8Array | null }): OutboxRow => ({
  seq: Number(r.seq),
  messages: r.messages === undefined ? 1 : Number(r.messages),
  ruleId: r.rule_id,
  partition: Number(r.part),
  deviceId: r.device_id,
  kind: r.kind as OutboxRow['kind'],
  createdTime: Number(r.created_time),
  payload: r.payload,
  ...(r.points ? { points: Buffer.isBuffer(r.points) ? r.points : Buffer.from(r.points.buffer, r.points.byteOffset, r.points.byteLength) } : {}),
});

const rowToLane = (r: ExportLaneTable): ExportLane => ({
  ruleId: r.rule_id,
  partition: Number(r.part),
  owner: r.owner,
  leaseUntil: Number(r.lease_until),
  attempts: Number(r.attempts),
  nextAttemptTime: Number(r.next_attempt_time),
  lastError: r.last_error,
});

/** Partitions `base` .. `base + lanes - 1`. */
const partsFrom = (base: number, lanes: number): number[] => Array.from({ length: lanes }, (_, i) => base + i);

/** The lane rows of partitions `parts` of a rule, free and due. */
const laneRows = (ruleId: string, parts: readonly number[]) =>
  parts.map((part) => ({ rule_id: ruleId, part, owner: null, lease_until: 0, attempts: 0, next_attempt_time: 0, last_error: null }));

/**
 * Inserts the rule and a lane row for each of the first EXPORT_PARTITIONS (16) partitions, not only its current lanes
 * (a new rule's are among them): rows written by a node of an earlier release, which counts 16 lanes, must find a lane
 * to be claimed from during a rolling upgrade (and a change of lanes keeps the rows of every count since). A lane row
 * with no outbox row is never claimed.
 */
export async function insertExportRule(db: Db, rule: ExportRule): Promise<void> {
  await db.insertInto('export_rule').values(ruleToRow(rule)).execute();
  const parts = new Set([...partsFrom(0, EXPORT_PARTITIONS), ...partsFrom(rule.laneBase ?? 0, rule.lanes)]);
  await db.insertInto('export_lane').values(laneRows(rule.id, [...parts])).execute();
}

/**
 * Saves a changed rule (inside the caller's transaction). A change of `lanes` re-lanes the rule without breaking any
 * device's order: the new lanes take the other partition range (`lane_base` 0 <-> 16), the rows waiting in the old
 * lanes stay there, and claimExportLanes delivers the new lanes only once the old ones hold no row (every device's
 * older messages first). Refused (nothing saved; the answer is how many messages still wait in the lanes of the count
 * before the current one) while a previous change's old lanes still hold rows; 0 = saved. Lanes of earlier counts are
 * kept: rows a node writes by a count it has not yet heard is gone are delivered from them (before the current lanes).
 */
export async function updateExportRule(db: Db, dialect: Dialect, rule: ExportRule): Promise<number> {
  const lock = dialect.name === 'postgres' ? sql`for update` : sql``;
  const current = (await sql<{ lanes: number; lane_base: number }>`select lanes, lane_base from export_rule where id = ${rule.id} ${lock}`.execute(db)).rows[0];
  const { id, ...row } = ruleToRow(rule);
  if (!current) return 0;
  const base = Number(current.lane_base);
  const lanes = Number(current.lanes);
  if (lanes === rule.lanes) {
    await db.updateTable('export_rule').set({ ...row, lanes, lane_base: base }).where('id', '=', id).execute();
    return 0;
  }
  const waiting = await sql<{ n: number | string | null }>`
    select (select coalesce(sum(messages), 0) from export_outbox where rule_id = ${id} and part < ${base})
      + (select coalesce(sum(messages), 0) from export_outbox where rule_id = ${id} and part >= ${base + lanes}) as n`.execute(db);
  const draining = Number(waiting.rows[0]?.n ?? 0);
  if (draining > 0) return draining;
  const newBase = base === 0 ? EXPORT_MAX_LANES : 0;
  // Lane rows are never deleted while the rule lives: a node that has not heard of a change yet still writes rows by
  // a count before it, and those must stay claimable. A lane used again starts with no backoff.
  await db
    .insertInto('export_lane')
    .values(laneRows(id, partsFrom(newBase, rule.lanes)))
    .onConflict((oc) => oc.columns(['rule_id', 'part']).doUpdateSet({ attempts: 0, next_attempt_time: 0, last_error: null }))
    .execute();
  await db.updateTable('export_rule').set({ ...row, lane_base: newBase }).where('id', '=', id).execute();
  return 0;
}

export async function getExportRule(db: Db, tenantId: string, id: string): Promise<ExportRule | undefined> {
  const row = await db.selectFrom('export_rule').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
  return row && rowToRule(row);
}

/** Every rule of every tenant (the delivery workers and the rule cache read them all). */
export async function listExportRules(db: Db): Promise<ExportRule[]> {
  const rows = await db.selectFrom('export_rule').selectAll().orderBy('created_time').orderBy('id').execute();
  return rows.map(rowToRule);
}

/** Deletes a rule with its outbox rows, lanes and dead letters; false when it did not exist. */
export async function deleteExportRule(db: Db, tenantId: string, id: string): Promise<boolean> {
  const deleted = await db.deleteFrom('export_rule').where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
  if (Number(deleted.numDeletedRows) === 0) return false;
  await db.deleteFrom('export_outbox').where('rule_id', '=', id).execute();
  await db.deleteFrom('export_lane').where('rule_id', '=', id).execute();
  await db.deleteFrom('export_dead_letter').where('rule_id', '=', id).execute();
  return true;
}

const outboxRows = (entries: readonly OutboxEntry[]) =>
  entries.map((e) => ({ rule_id: e.ruleId, part: e.partition, device_id: e.deviceId, kind: e.kind, created_time: e.createdTime, payload: e.payload, messages: e.messages ?? 1, points: e.points ?? null }));

export async function insertOutbox(db: Db, entries: readonly OutboxEntry[]): Promise<void> {
  for (let i = 0; i < entries.length; i += 500) await db.insertInto('export_outbox').values(outboxRows(entries.slice(i, i + 500))).execute();
}

const outboxInsertTexts = new Map<number, string>();

/** insertOutbox's INSERT of `rows` rows, as Kysely compiles it for SQLite (test/export/outbox-store.test.ts compares them). */
export function outboxInsertSql(rows: number): string {
  let text = outboxInsertTexts.get(rows);
  if (text === undefined) {
    const row = '(?, ?, ?, ?, ?, ?, ?, ?)';
    text = `insert into "export_outbox" ("rule_id", "part", "device_id", "kind", "created_time", "payload", "messages", "points") values ${Array.from({ length: rows }, () => row).join(', ')}`;
    outboxInsertTexts.set(rows, text);
  }
  return text;
}

/**
 * insertOutbox as statements, for SQLite's group commit to send with the batch's own (sqlite-upsert.ts): on the writer
 * thread the outbox rows then cost no round trip of their own. `seqs` gets each entry's seq once the statements ran:
 * the rows of one multi-row INSERT take consecutive seqs ending at its last insert rowid (one writer at a time, and
 * AUTOINCREMENT gives each row the largest seq so far plus one).
 */
export function outboxStatements(_db: Db, entries: readonly OutboxEntry[], seqs?: (number | undefined)[]): WriterOp[] {
  const ops: WriterOp[] = [];
  for (let i = 0; i < entries.length; i += 500) {
    const chunk = entries.slice(i, i + 500);
    // The statement Kysely compiles for these rows (insertOutbox), its text cached per row count: a group commit
    // writes one per commit, and compiling it cost ~50-90 µs of the event loop each time.
    const params: unknown[] = [];
    for (const e of chunk) params.push(e.ruleId, e.partition, e.deviceId, e.kind, e.createdTime, e.payload, e.messages ?? 1, e.points ?? null);
    const compiled = { sql: outboxInsertSql(chunk.length), parameters: params };
    const from = i;
    const done = seqs
      ? (result: WriterResult) => {
          if (result.changes !== chunk.length || result.insertId === undefined) return;
          const first = Number(result.insertId) - chunk.length + 1;
          for (let k = 0; k < chunk.length; k++) seqs[from + k] = first + k;
        }
      : undefined;
    ops.push({ sql: compiled.sql, params: compiled.parameters, done });
  }
  return ops;
}

/**
 * Claims up to `limit` lanes of enabled rules that are free (no owner, or a lease past `now`, or already ours), due (`nextAttemptTime`
 * reached) and hold at least one outbox row; leases them to `owner` until `now + leaseMs`. The lane claimed longest ago
 * comes first, so every lane gets its turn while a few stay busy. A lane of the rule's current lanes (`lane_base` ..
 * `lane_base + lanes - 1`) only once no lane of the count before (updateExportRule) holds a row: a device's messages
 * written before a change of lanes are all delivered before any written after it.
 */
export async function claimExportLanes(db: Db, dialect: Dialect, owner: string, now: number, leaseMs: number, limit: number): Promise<ExportLane[]> {
  const lock = dialect.name === 'postgres' ? sql`for update skip locked` : sql``;
  const result = await sql<ExportLaneTable>`
    update export_lane set owner = ${owner}, lease_until = ${now + leaseMs}
    where (rule_id, part) in (
      select l.rule_id, l.part from export_lane l
      where (l.owner is null or l.owner = ${owner} or l.lease_until < ${now})
        and l.next_attempt_time <= ${now}
        and exists (select 1 from export_outbox o where o.rule_id = l.rule_id and o.part = l.part)
        and exists (select 1 from export_rule r where r.id = l.rule_id and r.enabled = 1
          and (l.part < r.lane_base or l.part >= r.lane_base + r.lanes
            or (not exists (select 1 from export_outbox p where p.rule_id = r.id and p.part < r.lane_base)
              and not exists (select 1 from export_outbox p where p.rule_id = r.id and p.part >= r.lane_base + r.lanes))))
      order by l.lease_until
      limit ${limit}
      ${lock}
    )
    returning rule_id, part, owner, lease_until, attempts, next_attempt_time, last_error`.execute(db);
  return result.rows.map(rowToLane);
}

/**
 * The lane's oldest outbox rows, in order, holding at most `maxMessages` messages between them (at least one row).
 * The row sizes come from the lane index alone; only the rows taken are read whole, unless `written` has them all
 * (rows this node wrote and committed, by seq: a row never changes once written, and no seq is ever used again).
 */
export async function readOutbox(db: Db, ruleId: string, partition: number, maxMessages: number, written?: (seq: number) => OutboxRow | undefined): Promise<OutboxRow[]> {
  const sizes = await db.selectFrom('export_outbox').select(['seq', 'messages']).where('rule_id', '=', ruleId).where('part', '=', partition).orderBy('seq').limit(maxMessages).execute();
  if (sizes.length === 0) return [];
  let take = 0;
  for (let total = 0; take < sizes.length; take++) {
    total += Number(sizes[take].messages);
    if (take > 0 && total > maxMessages) break;
  }
  if (written) {
    const remembered: OutboxRow[] = [];
    for (let k = 0; k < take; k++) {
      const row = written(Number(sizes[k].seq));
      if (!row || row.ruleId !== ruleId || row.partition !== partition || (row.messages ?? 1) !== Number(sizes[k].messages)) break;
      remembered.push(row);
    }
    if (remembered.length === take) return remembered;
  }
  const rows = await db
    .selectFrom('export_outbox')
    .selectAll()
    .where('rule_id', '=', ruleId)
    .where('part', '=', partition)
    .where('seq', '>=', Number(sizes[0].seq))
    .where('seq', '<=', Number(sizes[take - 1].seq))
    .orderBy('seq')
    .execute();
  return rows.map(rowToOutbox);
}

/**
 * After a delivery: deletes the delivered rows and resets the lane's retry state, but only while `owner` still holds
 * the lease (false otherwise: another node took the lane over and will deliver the rows again). `seqs` are the rows
 * readOutbox returned, in order. On SQLite they are deleted as one range: a lane's rows between the first and the last
 * of them are exactly those rows, because SQLite commits one writer at a time and AUTOINCREMENT only grows, so a row
 * committed after the read has a larger seq. On PostgreSQL a transaction that took a smaller seq may commit after the
 * read, so the rows are deleted by their seqs.
 */
export async function completeExportBatch(db: Db, dialect: Dialect, owner: string, ruleId: string, partition: number, seqs: readonly number[]): Promise<boolean> {
  const lane = await db
    .updateTable('export_lane')
    .set({ attempts: 0, next_attempt_time: 0, last_error: null })
    .where('rule_id', '=', ruleId)
    .where('part', '=', partition)
    .where('owner', '=', owner)
    .executeTakeFirst();
  if (Number(lane.numUpdatedRows) === 0) return false;
  if (seqs.length === 0) return true;
  if (dialect.name !== 'postgres') {
    await db.executeQuery(CompiledQuery.raw(DELETE_RANGE_SQL, [ruleId, partition, seqs[0], seqs[seqs.length - 1]]));
    return true;
  }
  for (let i = 0; i < seqs.length; i += 500) await db.deleteFrom('export_outbox').where('seq', 'in', seqs.slice(i, i + 500)).execute();
  return true;
}

/**
 * completeExportBatch of several lanes on SQLite as one statement list (sqlite-writer-dialect.ts `statements`), which
 * the caller runs in a transaction on the writer thread (Store.transaction's `offload`): per lane the lane's UPDATE,
 * then, only if it changed the lane (`ifChanged`: `owner` still holds it), the range DELETE. The same statements as
 * completeExportBatch, without the event loop running them: a round's delete of a few hundred rows of megabytes of
 * compact telemetry held it for ~1-5 ms (bench/RESULTS.md, "Data out, session 9"). `kept[i]` is set once the list ran.
 */
export function completeExportBatchOps(owner: string, batches: readonly { ruleId: string; partition: number; seqs: readonly number[] }[]): { ops: WriterOp[]; kept: boolean[] } {
  const kept = batches.map(() => false);
  const ops: WriterOp[] = [];
  batches.forEach(({ ruleId, partition, seqs }, i) => {
    ops.push({ sql: COMPLETE_LANE_SQL, params: [0, 0, null, ruleId, partition, owner], done: (result) => (kept[i] = (result.changes ?? 0) > 0) });
    if (seqs.length > 0) ops.push({ sql: DELETE_RANGE_SQL, params: [ruleId, partition, seqs[0], seqs[seqs.length - 1]], ifChanged: true });
  });
  return { ops, kept };
}

/** completeExportBatch's lane UPDATE (as Kysely compiles it for SQLite: a test compares them) and SQLite range DELETE. */
export const COMPLETE_LANE_SQL = 'update "export_lane" set "attempts" = ?, "next_attempt_time" = ?, "last_error" = ? where "rule_id" = ? and "part" = ? and "owner" = ?';
const DELETE_RANGE_SQL = 'delete from "export_outbox" where "rule_id" = ? and "part" = ? and "seq" between ? and ?';

/** After a failed delivery: counts the attempt and sets when the lane is due again. */
export async function failExportBatch(db: Db, owner: string, ruleId: string, partition: number, nextAttemptTime: number, error: string): Promise<void> {
  await db
    .updateTable('export_lane')
    .set((eb) => ({ attempts: eb('attempts', '+', 1), next_attempt_time: nextAttemptTime, last_error: error.slice(0, 1000) }))
    .where('rule_id', '=', ruleId)
    .where('part', '=', partition)
    .where('owner', '=', owner)
    .execute();
}

/** Lets the lane go (another node, or this one, may claim it at once). */
export async function releaseExportLane(db: Db, owner: string, ruleId: string, partition: number): Promise<void> {
  await db.updateTable('export_lane').set({ owner: null, lease_until: 0 }).where('rule_id', '=', ruleId).where('part', '=', partition).where('owner', '=', owner).execute();
}

/**
 * Moves outbox rows to the dead letters, one dead letter per message, with the lane's last error; resets the lane so
 * the rows behind them go on. A row of one message keeps its seq; the messages of a row of several take new seqs from
 * the outbox's sequence, so dead letters and outbox rows never share one. Only while `owner` still holds the lane
 * (false otherwise, nothing written): the lane is updated first, which on PostgreSQL also locks it against a claim, so
 * a node that lost its lease never dead-letters rows another node now delivers or dead-letters itself.
 */
export async function deadLetter(db: Db, dialect: Dialect, owner: string, rows: readonly OutboxRow[], attempts: number, lastError: string, now: number): Promise<boolean> {
  if (rows.length === 0) return true;
  const { ruleId, partition } = rows[0];
  if (!(await completeExportBatch(db, dialect, owner, ruleId, partition, rows.map((r) => r.seq)))) return false;
  const letters: ExportDeadLetterTable[] = [];
  for (const r of rows) {
    const messages = unpackMessages(r);
    const seqs = messages.length === 1 ? [r.seq] : await newOutboxSeqs(db, dialect, messages.length);
    messages.forEach((m, i) =>
      letters.push({ seq: seqs[i], rule_id: r.ruleId, part: r.partition, device_id: m.deviceId, kind: r.kind, created_time: r.createdTime, payload: m.payload, attempts, last_error: lastError.slice(0, 1000), dead_time: now }),
    );
  }
  for (let i = 0; i < letters.length; i += 500) await db.insertInto('export_dead_letter').values(letters.slice(i, i + 500)).execute();
  return true;
}

/** `n` seqs no outbox row will take (inside the caller's transaction on SQLite, whose one writer makes this safe). */
async function newOutboxSeqs(db: Db, dialect: Dialect, n: number): Promise<number[]> {
  if (dialect.name === 'postgres') {
    const result = await sql<{ seq: string }>`select nextval(pg_get_serial_sequence('export_outbox', 'seq')) as seq from generate_series(1, ${n})`.execute(db);
    return result.rows.map((r) => Number(r.seq));
  }
  const result = await sql<{ seq: number | bigint }>`update sqlite_sequence set seq = seq + ${n} where name = 'export_outbox' returning seq`.execute(db);
  const last = Number(result.rows[0].seq);
  return Array.from({ length: n }, (_, i) => last - n + 1 + i);
}

/** One page of dead letters of the given rules, oldest first. */
export function listDeadLetters(db: Db, ruleIds: readonly string[], query: PageQuery): Promise<Page<DeadLetter>> {
  const base = db.selectFrom('export_dead_letter').where('rule_id', 'in', ruleIds.length > 0 ? [...ruleIds] : ['']);
  return fetchPage(base, query, (qb) => qb.selectAll().orderBy('seq'), (r: ExportDeadLetterTable) => ({
    ...rowToOutbox(r),
    attempts: Number(r.attempts),
    lastError: r.last_error,
    deadTime: Number(r.dead_time),
  }));
}

/** Puts dead letters of the given rules (all, or those with the given seqs) back in the outbox; returns how many. */
export async function replayDeadLetters(db: Db, ruleIds: readonly string[], seqs: readonly number[] | undefined): Promise<number> {
  if (ruleIds.length === 0) return 0;
  let query = db.selectFrom('export_dead_letter').selectAll().where('rule_id', 'in', [...ruleIds]);
  if (seqs) query = query.where('seq', 'in', seqs.length > 0 ? [...seqs] : [-1]);
  const rows = await query.orderBy('seq').execute();
  if (rows.length === 0) return 0;
  // Into the rule's lanes as they are now (its lane count may have changed since the message died).
  const rules = new Map((await db.selectFrom('export_rule').select(['id', 'lanes', 'lane_base']).where('id', 'in', [...new Set(rows.map((r) => r.rule_id))]).execute()).map((r) => [r.id, { lanes: Number(r.lanes), laneBase: Number(r.lane_base) }]));
  const partOf = (r: ExportDeadLetterTable) => {
    const rule = rules.get(r.rule_id);
    return rule ? laneOf(rule, deviceHash(r.device_id)) : Number(r.part);
  };
  await insertOutbox(db, rows.map((r) => ({ ruleId: r.rule_id, partition: partOf(r), deviceId: r.device_id, kind: r.kind as OutboxEntry['kind'], createdTime: Number(r.created_time), payload: r.payload })));
  const done = rows.map((r) => Number(r.seq));
  for (let i = 0; i < done.length; i += 500) await db.deleteFrom('export_dead_letter').where('seq', 'in', done.slice(i, i + 500)).execute();
  return rows.length;
}

/** Messages waiting in the outbox, per rule. */
export async function countOutbox(db: Db): Promise<Map<string, number>> {
  const rows = await db.selectFrom('export_outbox').select(['rule_id', (eb) => eb.fn.sum<number | string>('messages').as('n')]).groupBy('rule_id').execute();
  return new Map(rows.map((r) => [r.rule_id, Number(r.n)]));
}

/** The lanes of one rule. */
export async function listExportLanes(db: Db, ruleId: string): Promise<ExportLane[]> {
  const rows = await db.selectFrom('export_lane').selectAll().where('rule_id', '=', ruleId).orderBy('part').execute();
  return rows.map(rowToLane);
}
