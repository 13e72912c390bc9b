/**
 * Reads SaveOtaPackageInfoRequest bodies and OTA paging parameters (spec thingsboard-ota §1.1, §1.2).
 */
import { badRequest } from '../core/errors.ts';
import type { PageQuery } from '../core/model.ts';
import type { OtaPackageInput } from '../core/ota/ota.ts';
import { entityIdInput } from './request-input.ts';

function str(body: Record<string, unknown>, field: string): string | null {
  const v = body[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw badRequest(`Invalid ${field}: a string is expected`);
  return v;
}

/** POST /api/otaPackage body -> OtaPackageInput (JSON null = absent, DESIGN 1). */
export function otaPackageInput(body: Record<string, unknown>): OtaPackageInput {
  const input: OtaPackageInput = {
    title: str(body, 'title'),
    version: str(body, 'version'),
    type: str(body, 'type'),
    tag: str(body, 'tag'),
    url: str(body, 'url'),
    checksumAlgorithm: str(body, 'checksumAlgorithm'),
    checksum: str(body, 'checksum'),
    fileName: str(body, 'fileName'),
    contentType: str(body, 'contentType'),
    usesUrl: body.usesUrl === true,
    deviceProfileId: entityIdInput(body.deviceProfileId, 'deviceProfileId') ?? null,
  };
  const id = entityIdInput(body.id, 'otaPackage id');
  if (id) input.id = id;
  if (body.dataSize !== undefined && body.dataSize !== null) {
    if (typeof body.dataSize !== 'number' || !Number.isSafeInteger(body.dataSize) || body.dataSize < 0) throw badRequest('Invalid dataSize: a whole number is expected');
    input.dataSize = body.dataSize;
  }
  const info = body.additionalInfo;
  if (info !== undefined && info !== null) {
    if (typeof info !== 'object' || Array.isArray(info)) throw badRequest('Invalid additionalInfo: a JSON object is expected');
    input.additionalInfo = info as Record<string, unknown>;
  }
  return input;
}

/**
 * TB paging checks with its texts (spec §1.2 R6): page size ≥ 1, page ≥ 0, a plain sort property, ASC/DESC in any case.
 */
export function otaPageQuery(q: Record<string, string | undefined>): PageQuery {
  const whole = (name: string): number => {
    const raw = q[name];
    if (raw === undefined || raw === '') throw badRequest(`Required request parameter '${name}' is not present`);
    if (!/^-?\d+$/.test(raw)) throw badRequest(`Failed to convert value of type 'java.lang.String' to required type 'int'; For input string: "${raw}"`);
    return Number(raw);
  };
  const pageSize = whole('pageSize');
  const page = whole('page');
  if (pageSize < 1) throw badRequest(`Incorrect page link page size '${pageSize}'. Page size must be greater than zero.`);
  if (page < 0) throw badRequest(`Incorrect page link page '${page}'. Page must be positive integer.`);
  const query: PageQuery = { pageSize: Math.min(pageSize, 100_000), page };
  if (q.textSearch) query.textSearch = q.textSearch;
  if (q.sortProperty) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(q.sortProperty)) throw badRequest('Invalid sort property');
    query.sortProperty = q.sortProperty;
  }
  if (q.sortOrder) {
    const order = q.sortOrder.toUpperCase();
    if (order !== 'ASC' && order !== 'DESC') throw badRequest(`Unsupported sort order '${q.sortOrder}'! Only 'ASC' or 'DESC' types are allowed.`);
    query.sortOrder = order;
  }
  return query;
}
