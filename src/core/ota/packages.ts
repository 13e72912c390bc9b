/**
 * OTA packages: metadata saved with ThingsBoard's rules (spec thingsboard-ota §1.2), bytes uploaded as a stream into
 * 64 KiB pieces while the checksum is computed, and read back piece by piece. Nothing here holds a whole package.
 */
import type { Actor } from '../api.ts';
import type { AuditRecorder } from '../audit.ts';
import { FleetgateError, notFound } from '../errors.ts';
import { newId } from '../ids.ts';
import type { Page, PageQuery } from '../model.ts';
import type { OtaPackageFilter } from '../ports/ota-store.ts';
import { createChecksummer, parseChecksumAlgorithm } from './checksum.ts';
import { OTA_PIECE_SIZE, OTA_TYPES, type OtaPackage, type OtaType } from './model.ts';
import { checkLengths, checkRequired, checkUpdate } from './package-rules.ts';
import type { Store } from '../ports/store.ts';

/** What POST /api/otaPackage carries (SaveOtaPackageInfoRequest), after wire parsing. */
export interface OtaPackageInput {
  id?: string;
  title?: string | null;
  version?: string | null;
  type?: string | null;
  deviceProfileId?: string | null;
  tag?: string | null;
  url?: string | null;
  usesUrl?: boolean;
  checksumAlgorithm?: string | null;
  checksum?: string | null;
  dataSize?: number | null;
  fileName?: string | null;
  contentType?: string | null;
  additionalInfo?: Record<string, unknown> | null;
}

/** One uploaded file part. */
export interface OtaUpload {
  checksumAlgorithm: string | undefined;
  checksum: string | undefined;
  fileName: string | undefined;
  contentType: string | undefined;
  data: AsyncIterable<Buffer>;
}

const bad = (message: string) => new FleetgateError('INVALID_ARGUMENT', message);
const PERMISSION_DENIED = "You don't have permission to perform this operation!";
/** Pieces written per statement while uploading (1 MiB). */
const PIECES_PER_WRITE = 16;
/** Blobs of interrupted uploads older than this are swept. */
const ORPHAN_AGE_MS = 6 * 60 * 60 * 1000;

export class OtaPackages {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditRecorder,
    private readonly profileExists: (tenantId: string, profileId: string) => Promise<boolean>,
    /** Largest package accepted, bytes. */
    private readonly maxPackageBytes: number,
  ) {}

  /** R1-with-id, R2, R3, R5, R8: by id, 404 when missing, 403 for another tenant's (spec §1.2 "Common"). */
  async getOwned(tenantId: string, id: string): Promise<OtaPackage> {
    const pkg = await this.store.ota.getPackage(id);
    if (!pkg) throw notFound(`Ota package with id [${id}] is not found`);
    if (pkg.tenantId !== tenantId) throw new FleetgateError('PERMISSION_DENIED', PERMISSION_DENIED);
    return pkg;
  }

  /** R4: 404 "Requested item wasn't found!"; another tenant's package is answered the same (spec §7.1: scoped on purpose). */
  async getInfo(tenantId: string, id: string): Promise<OtaPackage> {
    const pkg = await this.store.ota.getPackage(id);
    if (!pkg || pkg.tenantId !== tenantId) throw notFound("Requested item wasn't found!");
    return pkg;
  }

  list(tenantId: string, query: PageQuery, filter: OtaPackageFilter = {}): Promise<Page<OtaPackage>> {
    return this.store.ota.listPackages(tenantId, query, filter);
  }

  /** R1: creates or updates a package's metadata. */
  async save(tenantId: string, input: OtaPackageInput, actor: Actor): Promise<OtaPackage> {
    if (input.usesUrl && (!input.url || input.url.trim() === '')) throw bad('Ota package URL should be specified!');
    checkLengths({ title: input.title, version: input.version, tag: input.tag, url: input.url, 'file name': input.fileName, contentType: input.contentType });
    checkLengths({ checksum: input.checksum }, { checksum: 1020 });
    const type = input.type ?? null;
    if (type !== null && !(OTA_TYPES as readonly string[]).includes(type)) throw bad(`No enum constant org.thingsboard.server.common.data.ota.OtaPackageType.${type}`);
    const existing = input.id ? await this.getOwned(tenantId, input.id) : undefined;
    const pkg: OtaPackage = {
      id: existing?.id ?? newId(),
      tenantId,
      deviceProfileId: input.deviceProfileId ?? null,
      type: type as OtaType,
      title: input.title ?? '',
      version: input.version ?? '',
      tag: input.tag ?? null,
      url: input.url && input.url !== '' ? input.url : null,
      fileName: input.fileName ?? null,
      contentType: input.contentType ?? null,
      checksumAlgorithm: input.checksumAlgorithm ? parseChecksumAlgorithm(input.checksumAlgorithm) : null,
      checksum: input.checksum ?? null,
      dataSize: input.dataSize ?? null,
      blobId: existing?.blobId ?? null,
      additionalInfo: input.additionalInfo ?? null,
      createdTime: existing?.createdTime ?? Date.now(),
    };
    checkRequired(pkg);
    if (pkg.deviceProfileId && !(await this.profileExists(tenantId, pkg.deviceProfileId))) throw bad('OtaPackage is referencing to non-existent device profile!');
    if (existing) checkUpdate(existing, pkg);
    const same = await this.store.ota.findPackageByTitleVersion(tenantId, pkg.title, pkg.version);
    if (same && same.id !== pkg.id) throw bad('OtaPackage with such title and version already exists!');
    try {
      if (existing) await this.store.ota.updatePackage(pkg);
      else await this.store.ota.insertPackage(pkg);
    } catch (err) {
      // The unique index decides a race between two creates (DESIGN 7).
      if (await this.store.ota.findPackageByTitleVersion(tenantId, pkg.title, pkg.version).then((p) => p && p.id !== pkg.id)) {
        throw bad('OtaPackage with such title and version already exists!');
      }
      throw err;
    }
    await this.audit.action(actor, tenantId, { type: 'OTA_PACKAGE', id: pkg.id, name: pkg.title }, existing ? 'UPDATED' : 'ADDED', { type: pkg.type, version: pkg.version });
    return (await this.store.ota.getPackage(pkg.id)) ?? pkg;
  }

  /**
   * R2: streams the file into a new blob, computing the checksum as it goes; a given checksum must match exactly
   * (else 400 "Wrong otaPackage file!" and nothing is kept). The blob is attached to the package at the end, in one
   * short statement, so readers never see a partial package. A second upload succeeds only with identical bytes
   * and file fields (TB rule 9), and then changes nothing.
   */
  async upload(tenantId: string, id: string, upload: OtaUpload, actor: Actor): Promise<OtaPackage> {
    if (!upload.checksumAlgorithm || upload.checksumAlgorithm.trim() === '') throw bad("Parameter 'checksumAlgorithm' can't be empty!");
    const stored = await this.getOwned(tenantId, id);
    const algorithm = parseChecksumAlgorithm(upload.checksumAlgorithm);
    if (!upload.fileName) throw bad('OtaPackage file name should be specified!');
    if (!upload.contentType) throw bad('OtaPackage content type should be specified!');
    if (stored.url !== null) throw bad('Updating otaPackage URL is prohibited!');
    checkLengths({ 'file name': upload.fileName, contentType: upload.contentType });
    if (!stored.deviceProfileId) throw bad('OtaPackage should be assigned to a device profile before its file is uploaded');
    const blobId = newId();
    await this.store.ota.beginBlob(blobId, Date.now());
    let kept = false;
    try {
      const { size, checksum } = await this.writeBlob(blobId, upload.data, createChecksummer(algorithm));
      if (size === 0) throw bad('OtaPackage data should be specified!');
      // TB: the given checksum is string-compared with the computed one (spec §7.4: no case folding, no 0x).
      if (upload.checksum && upload.checksum !== checksum) throw bad('Wrong otaPackage file!');
      const next: OtaPackage = { ...stored, blobId, fileName: upload.fileName, contentType: upload.contentType, checksumAlgorithm: algorithm, checksum, dataSize: size };
      if (stored.blobId !== null) {
        checkUpdate(stored, { ...next, blobId: stored.blobId });
        return stored; // the same bytes again: nothing changes
      }
      checkUpdate(stored, next);
      if (!(await this.store.ota.attachBlob(next))) throw bad('Updating otaPackage data is prohibited!');
      kept = true;
      await this.audit.action(actor, tenantId, { type: 'OTA_PACKAGE', id, name: stored.title }, 'UPDATED', { fileName: upload.fileName, dataSize: size, checksumAlgorithm: algorithm });
      return (await this.store.ota.getPackage(id))!;
    } finally {
      if (!kept) await this.store.ota.dropBlob(blobId);
    }
  }

  /** Writes the stream as pieces of exactly OTA_PIECE_SIZE bytes (the last one shorter). */
  private async writeBlob(blobId: string, data: AsyncIterable<Buffer>, checksummer: ReturnType<typeof createChecksummer>): Promise<{ size: number; checksum: string }> {
    let size = 0;
    let idx = 0;
    let pending: Buffer[] = [];
    let current = Buffer.allocUnsafe(OTA_PIECE_SIZE);
    let filled = 0;
    const flush = async (force: boolean) => {
      if (pending.length >= PIECES_PER_WRITE || (force && pending.length > 0)) {
        await this.store.ota.writePieces(blobId, idx, pending);
        idx += pending.length;
        pending = [];
      }
    };
    for await (const chunk of data) {
      size += chunk.length;
      if (size > this.maxPackageBytes) throw new FleetgateError('PAYLOAD_TOO_LARGE', `Payload size exceeds the limit of ${this.maxPackageBytes} bytes`);
      checksummer.update(chunk);
      let at = 0;
      while (at < chunk.length) {
        const n = Math.min(OTA_PIECE_SIZE - filled, chunk.length - at);
        chunk.copy(current, filled, at, at + n);
        filled += n;
        at += n;
        if (filled === OTA_PIECE_SIZE) {
          pending.push(current);
          current = Buffer.allocUnsafe(OTA_PIECE_SIZE);
          filled = 0;
          await flush(false);
        }
      }
    }
    if (filled > 0) pending.push(current.subarray(0, filled));
    await flush(true);
    return { size, checksum: checksummer.hex() };
  }

  /** R8: refused while a device or profile is assigned the package (TB's FK texts, spec §1.2). */
  async delete(tenantId: string, id: string, actor: Actor): Promise<void> {
    const pkg = await this.getOwned(tenantId, id);
    const refs = await this.store.ota.countAssignments(id);
    const software = pkg.type === 'SOFTWARE';
    if (refs.devices > 0) throw bad(software ? 'The software referenced by the devices cannot be deleted!' : 'The otaPackage referenced by the devices cannot be deleted!');
    if (refs.profiles > 0) throw bad(software ? 'The software referenced by the device profile cannot be deleted!' : 'The otaPackage referenced by the device profile cannot be deleted!');
    await this.store.ota.deletePackage(id);
    await this.audit.action(actor, tenantId, { type: 'OTA_PACKAGE', id, name: pkg.title }, 'DELETED');
  }

  /**
   * Bytes `[start, end)` of a package, as pieces in order: at most `piecesPerRead` pieces per indexed range read, so
   * memory is bounded by that, whatever the package size.
   */
  async *read(pkg: OtaPackage, start: number, end: number, piecesPerRead = 16): AsyncGenerator<Buffer> {
    if (!pkg.blobId || end <= start) return;
    let first = Math.floor(start / OTA_PIECE_SIZE);
    const last = Math.floor((end - 1) / OTA_PIECE_SIZE);
    while (first <= last) {
      const to = Math.min(last, first + piecesPerRead - 1);
      const pieces = await this.store.ota.readPieces(pkg.blobId, first, to);
      if (pieces.length !== to - first + 1) throw new FleetgateError('INTERNAL', `package ${pkg.id}: pieces ${first}..${to} missing`);
      for (let i = 0; i < pieces.length; i++) {
        const pieceStart = (first + i) * OTA_PIECE_SIZE;
        const from = Math.max(0, start - pieceStart);
        const until = Math.min(pieces[i].length, end - pieceStart);
        yield from === 0 && until === pieces[i].length ? pieces[i] : pieces[i].subarray(from, until);
      }
      first = to + 1;
    }
  }

  /** Bytes `[start, end)` as one buffer (a device chunk: bounded by the chunk size the transport allows). */
  async readRange(pkg: OtaPackage, start: number, end: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const part of this.read(pkg, start, end, Number.MAX_SAFE_INTEGER)) parts.push(part);
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /** Drops blobs of uploads a crash cut short (run at start and now and then; safe on every node). */
  sweep(now = Date.now()): Promise<number> {
    return this.store.ota.sweepOrphanBlobs(now - ORPHAN_AGE_MS);
  }
}
