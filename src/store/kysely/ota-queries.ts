/**
 * OTA storage (migration 004) for SQLite and PostgreSQL: packages, their bytes in 64 KiB pieces, assignments, and
 * the paced rollout queue with leases. Reached as `store.ota`, on the store's connection or transaction.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { OtaPackageFilter, OtaStore } from '../../core/ports/ota-store.ts';
import type { Page, PageQuery } from '../../core/model.ts';
import type { OtaPackage, OtaType, RolloutItem } from '../../core/ota/model.ts';
import type { Dialect } from '../dialect.ts';
import type { Database } from '../schema.ts';
import { fromRow, num, SORT_COLUMNS, toRow } from './ota-rows.ts';
import { fetchPage } from './paging.ts';
import { executeWithKeptText } from './compiled-inserts.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** Id counts whose assignment lookup keeps its SQL text (a provisioning group's devices and profiles). */
const MAX_IDS_KEPT = 512;

/** The OtaStore over one Kysely connection or transaction. */
export class KyselyOtaStore implements OtaStore {
  constructor(
    private readonly db: Db,
    private readonly dialect: Dialect,
  ) {}

  async insertPackage(pkg: OtaPackage): Promise<void> {
    await this.db.insertInto('ota_package').values(toRow(pkg)).execute();
  }

  async updatePackage(pkg: OtaPackage): Promise<void> {
    const { id, blob_id: _blob, ...row } = toRow(pkg);
    await this.db.updateTable('ota_package').set(row).where('id', '=', id).execute();
  }

  async getPackage(id: string): Promise<OtaPackage | undefined> {
    const row = await this.db.selectFrom('ota_package').selectAll().where('id', '=', id).executeTakeFirst();
    return row && fromRow(row);
  }

  async findPackageByTitleVersion(tenantId: string, title: string, version: string): Promise<OtaPackage | undefined> {
    const row = await this.db.selectFrom('ota_package').selectAll().where('tenant_id', '=', tenantId).where('title', '=', title).where('version', '=', version).executeTakeFirst();
    return row && fromRow(row);
  }

  listPackages(tenantId: string, query: PageQuery, filter: OtaPackageFilter): Promise<Page<OtaPackage>> {
    let base = this.db.selectFrom('ota_package').where('tenant_id', '=', tenantId);
    if (filter.deviceProfileId) base = base.where('device_profile_id', '=', filter.deviceProfileId);
    if (filter.type) base = base.where('type', '=', filter.type);
    if (filter.assignable) base = base.where((eb) => eb.or([eb('blob_id', 'is not', null), eb('url', 'is not', null)]));
    if (query.textSearch) base = base.where(sql<boolean>`lower(title) like ${'%' + query.textSearch.toLowerCase() + '%'}`);
    const column = query.sortProperty ? SORT_COLUMNS[query.sortProperty as keyof typeof SORT_COLUMNS] : undefined;
    const order = query.sortOrder === 'DESC' ? 'desc' : 'asc';
    // TB: default order is by id ascending.
    return fetchPage(base, query, (qb) => (column ? qb.selectAll().orderBy(column, order).orderBy('id') : qb.selectAll().orderBy('id')), fromRow);
  }

  async deletePackage(id: string): Promise<boolean> {
    const pkg = await this.getPackage(id);
    if (!pkg) return false;
    await this.db.deleteFrom('ota_package').where('id', '=', id).execute();
    if (pkg.blobId) await this.dropBlob(pkg.blobId);
    return true;
  }

  /** A deleted device's assignment and queued rollout. */
  async deleteForDevice(deviceId: string): Promise<void> {
    await this.db.deleteFrom('ota_assignment').where('target_id', '=', deviceId).execute();
    await this.db.deleteFrom('ota_rollout_queue').where('device_id', '=', deviceId).execute();
  }

  /** A deleted profile's assignment and packages (TB: cascade). */
  async deleteForProfile(profileId: string): Promise<void> {
    await this.db.deleteFrom('ota_assignment').where('target_id', '=', profileId).execute();
    const packages = await this.db.selectFrom('ota_package').select('id').where('device_profile_id', '=', profileId).execute();
    for (const p of packages) await this.deletePackage(p.id);
  }

  async beginBlob(blobId: string, time: number): Promise<void> {
    await this.db.insertInto('ota_blob').values({ id: blobId, created_time: time }).execute();
  }

  async writePieces(blobId: string, firstIdx: number, pieces: Buffer[]): Promise<void> {
    if (pieces.length === 0) return;
    await this.db
      .insertInto('ota_package_chunk')
      .values(pieces.map((data, i) => ({ blob_id: blobId, idx: firstIdx + i, data })))
      .execute();
  }

  async attachBlob(pkg: OtaPackage): Promise<boolean> {
    const result = await this.db
      .updateTable('ota_package')
      .set({
        blob_id: pkg.blobId,
        file_name: pkg.fileName,
        content_type: pkg.contentType,
        checksum_algorithm: pkg.checksumAlgorithm,
        checksum: pkg.checksum,
        data_size: pkg.dataSize,
      })
      .where('id', '=', pkg.id)
      .where('blob_id', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async dropBlob(blobId: string): Promise<void> {
    await this.db.deleteFrom('ota_package_chunk').where('blob_id', '=', blobId).execute();
    await this.db.deleteFrom('ota_blob').where('id', '=', blobId).execute();
  }

  async sweepOrphanBlobs(before: number): Promise<number> {
    const orphans = await this.db
      .selectFrom('ota_blob')
      .select('id')
      .where('created_time', '<', before)
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('ota_package').select('id').whereRef('ota_package.blob_id', '=', 'ota_blob.id'))))
      .execute();
    for (const o of orphans) await this.dropBlob(o.id);
    return orphans.length;
  }

  async readPieces(blobId: string, fromIdx: number, toIdx: number): Promise<Buffer[]> {
    const rows = await this.db.selectFrom('ota_package_chunk').select('data').where('blob_id', '=', blobId).where('idx', '>=', fromIdx).where('idx', '<=', toIdx).orderBy('idx').execute();
    return rows.map((r) => r.data);
  }

  async getAssignments(targetIds: string[]): Promise<Map<string, Map<OtaType, string>>> {
    const out = new Map<string, Map<OtaType, string>>();
    if (targetIds.length === 0) return out;
    // Asked once per provisioning group (core.ts): the SQL text is built once per id count (compiled-inserts.ts).
    const { rows } = await executeWithKeptText(this.db, `ota-assignments:${targetIds.length}`, targetIds, () =>
      this.db.selectFrom('ota_assignment').select(['target_id', 'ota_type', 'package_id']).where('target_id', 'in', targetIds),
      targetIds.length <= MAX_IDS_KEPT,
    );
    for (const r of rows) {
      let m = out.get(r.target_id);
      if (!m) out.set(r.target_id, (m = new Map()));
      m.set(r.ota_type as OtaType, r.package_id);
    }
    return out;
  }

  async setAssignment(targetId: string, kind: 'DEVICE' | 'DEVICE_PROFILE', type: OtaType, packageId: string | null): Promise<void> {
    if (packageId === null) {
      await this.db.deleteFrom('ota_assignment').where('target_id', '=', targetId).where('ota_type', '=', type).execute();
      return;
    }
    await this.db
      .insertInto('ota_assignment')
      .values({ target_id: targetId, target_kind: kind, ota_type: type, package_id: packageId })
      .onConflict((oc) => oc.columns(['target_id', 'ota_type']).doUpdateSet({ package_id: packageId, target_kind: kind }))
      .execute();
  }

  async countAssignments(packageId: string): Promise<{ devices: number; profiles: number }> {
    const rows = await this.db
      .selectFrom('ota_assignment')
      .select(['target_kind', (eb) => eb.fn.countAll().as('n')])
      .where('package_id', '=', packageId)
      .groupBy('target_kind')
      .execute();
    const count = (kind: string) => num(rows.find((r) => r.target_kind === kind)?.n ?? 0);
    return { devices: count('DEVICE'), profiles: count('DEVICE_PROFILE') };
  }

  private followingProfile(profileId: string, type: OtaType) {
    return this.db
      .selectFrom('device')
      .where('profile_id', '=', profileId)
      .where(({ not, exists, selectFrom }) =>
        not(exists(selectFrom('ota_assignment').select('target_id').whereRef('ota_assignment.target_id', '=', 'device.id').where('ota_assignment.ota_type', '=', type))),
      );
  }

  async devicesFollowingProfile(profileId: string, type: OtaType, afterId: string, limit: number): Promise<string[]> {
    const rows = await this.followingProfile(profileId, type).select('id').where('id', '>', afterId).orderBy('id').limit(limit).execute();
    return rows.map((r) => r.id);
  }

  async devicesNeverQueued(profileId: string, type: OtaType, afterId: string, limit: number): Promise<string[]> {
    const key = `target_${type === 'FIRMWARE' ? 'fw' : 'sw'}_ts`;
    const rows = await this.followingProfile(profileId, type)
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('ts_kv_latest').select('device_id').whereRef('ts_kv_latest.device_id', '=', 'device.id').where('ts_kv_latest.key', '=', key))))
      .select('id')
      .where('id', '>', afterId)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map((r) => r.id);
  }

  async countDevicesFollowingProfile(profileId: string, type: OtaType): Promise<number> {
    const row = await this.followingProfile(profileId, type).select((eb) => eb.fn.countAll().as('n')).executeTakeFirst();
    return num(row?.n ?? 0);
  }

  async enqueueRollout(items: RolloutItem[]): Promise<void> {
    for (let i = 0; i < items.length; i += 500) {
      const values = items.slice(i, i + 500).map((it) => ({ device_id: it.deviceId, ota_type: it.type, package_id: it.packageId, queued_ts: it.queuedTs, lease_until: 0 }));
      await this.db
        .insertInto('ota_rollout_queue')
        .values(values)
        .onConflict((oc) =>
          oc.columns(['device_id', 'ota_type']).doUpdateSet((eb) => ({
            package_id: eb.ref('excluded.package_id'),
            queued_ts: eb.ref('excluded.queued_ts'),
            lease_until: 0,
          })),
        )
        .execute();
    }
  }

  async claimRollout(now: number, max: number, leaseMs: number, spacingMs: number): Promise<RolloutItem[]> {
    const postgres = this.dialect.name === 'postgres';
    // PostgreSQL: the pacer row lock makes nodes take turns; SQLite has one writer anyway.
    let pacer = this.db.selectFrom('ota_rollout_pacer').select('next_at').where('id', '=', 'rollout');
    if (postgres) pacer = pacer.forUpdate();
    const row = await pacer.executeTakeFirst();
    if (!row || num(row.next_at) > now) return [];
    let pick = this.db.selectFrom('ota_rollout_queue').selectAll().where('lease_until', '<', now).orderBy('queued_ts').orderBy('device_id').limit(max);
    if (postgres) pick = pick.forUpdate().skipLocked();
    const rows = await pick.execute();
    if (rows.length === 0) return [];
    for (const r of rows) {
      await this.db.updateTable('ota_rollout_queue').set({ lease_until: now + leaseMs }).where('device_id', '=', r.device_id).where('ota_type', '=', r.ota_type).execute();
    }
    await this.db.updateTable('ota_rollout_pacer').set({ next_at: now + Math.ceil(spacingMs * rows.length) }).where('id', '=', 'rollout').execute();
    return rows.map((r) => ({ deviceId: r.device_id, type: r.ota_type as OtaType, packageId: r.package_id, queuedTs: num(r.queued_ts) }));
  }

  async completeRollout(item: RolloutItem): Promise<void> {
    await this.db
      .deleteFrom('ota_rollout_queue')
      .where('device_id', '=', item.deviceId)
      .where('ota_type', '=', item.type)
      .where('package_id', '=', item.packageId)
      .where('queued_ts', '=', item.queuedTs)
      .execute();
  }

  async countQueued(packageId: string): Promise<number> {
    const row = await this.db.selectFrom('ota_rollout_queue').select((eb) => eb.fn.countAll().as('n')).where('package_id', '=', packageId).executeTakeFirst();
    return num(row?.n ?? 0);
  }

  async rolloutDevices(profileId: string, type: OtaType, packageId: string) {
    const prefix = type === 'FIRMWARE' ? 'fw' : 'sw';
    const rows = await this.db
      .selectFrom('device as d')
      .leftJoin('ota_assignment as own', (j) => j.onRef('own.target_id', '=', 'd.id').on('own.ota_type', '=', type))
      .leftJoin('ota_assignment as prof', (j) => j.onRef('prof.target_id', '=', 'd.profile_id').on('prof.ota_type', '=', type))
      .leftJoin('ts_kv_latest as st', (j) => j.onRef('st.device_id', '=', 'd.id').on('st.key', '=', `${prefix}_state`))
      .leftJoin('ts_kv_latest as er', (j) => j.onRef('er.device_id', '=', 'd.id').on('er.key', '=', `${prefix}_error`))
      .select(['d.id as deviceId', 'd.name as deviceName', 'st.str_v as state', 'st.ts as stateTs', 'er.str_v as error'])
      .where('d.profile_id', '=', profileId)
      .where((eb) => eb(eb.fn.coalesce('own.package_id', 'prof.package_id'), '=', packageId))
      .orderBy('d.id')
      .execute();
    return rows.map((r) => ({ deviceId: r.deviceId, deviceName: r.deviceName, state: r.state ?? null, stateTs: r.stateTs === null ? null : num(r.stateTs), error: r.error ?? null }));
  }
}
