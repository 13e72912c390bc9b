/** Row <-> model mapping of ota_package, and its sortable columns. */
import type { Selectable } from 'kysely';
import type { ChecksumAlgorithm } from '../../core/ota/checksum.ts';
import type { OtaPackage, OtaType } from '../../core/ota/model.ts';
import type { OtaPackageTable } from '../schema.ts';

export const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));

export function toRow(p: OtaPackage): OtaPackageTable {
  return {
    id: p.id,
    tenant_id: p.tenantId,
    device_profile_id: p.deviceProfileId,
    type: p.type,
    title: p.title,
    version: p.version,
    tag: p.tag,
    url: p.url,
    file_name: p.fileName,
    content_type: p.contentType,
    checksum_algorithm: p.checksumAlgorithm,
    checksum: p.checksum,
    data_size: p.dataSize,
    blob_id: p.blobId,
    additional_info: p.additionalInfo === null ? null : JSON.stringify(p.additionalInfo),
    created_time: p.createdTime,
  };
}

export function fromRow(r: Selectable<OtaPackageTable>): OtaPackage {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    deviceProfileId: r.device_profile_id,
    type: r.type as OtaType,
    title: r.title,
    version: r.version,
    tag: r.tag,
    url: r.url,
    fileName: r.file_name,
    contentType: r.content_type,
    checksumAlgorithm: r.checksum_algorithm as ChecksumAlgorithm | null,
    checksum: r.checksum,
    dataSize: r.data_size === null ? null : num(r.data_size),
    blobId: r.blob_id,
    additionalInfo: r.additional_info === null ? null : JSON.parse(r.additional_info),
    createdTime: num(r.created_time),
  };
}

/** spec §1.2 R6: the documented sort properties. */
export const SORT_COLUMNS = {
  createdTime: 'created_time',
  type: 'type',
  title: 'title',
  version: 'version',
  tag: 'tag',
  url: 'url',
  fileName: 'file_name',
  dataSize: 'data_size',
  checksum: 'checksum',
} as const;
