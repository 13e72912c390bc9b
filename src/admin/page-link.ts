/**
 * ThingsBoard's PageLink rules for the routes added for API parity (spec §1.3): pageSize >= 1, page >= 0, a known
 * sortProperty, sortOrder ASC|DESC in any case. Violations are 400/31 with ThingsBoard's messages; fleetgate also
 * answers 400/31 where ThingsBoard falls through to 500 (missing pageSize/page, unknown sort property).
 */
import { badRequest } from '../core/errors.ts';
import type { PageQuery } from '../core/model.ts';

/** Query-string properties of a ThingsBoard page link, for route schemas (checked by `pageLink`, not by ajv). */
export const PAGE_LINK_PROPERTIES = {
  pageSize: { type: 'string', description: 'Maximum amount of entities in one page (>= 1)' },
  page: { type: 'string', description: 'Sequence number of page starting from 0' },
  textSearch: { type: 'string', description: 'Case-insensitive substring filter' },
  sortProperty: { type: 'string', description: 'Property to sort by' },
  sortOrder: { type: 'string', description: 'ASC or DESC (any case; default ASC)' },
} as const;

/** The raw page-link query string. */
export interface PageLinkParams {
  pageSize?: string;
  page?: string;
  textSearch?: string;
  sortProperty?: string;
  sortOrder?: string;
}

function integerParam(value: string | undefined, name: string): number {
  if (value === undefined || value === '') throw badRequest(`Required request parameter '${name}' for method parameter type int is not present`);
  if (!/^-?\d+$/.test(value.trim())) throw badRequest(`Failed to convert value of type 'java.lang.String' to required type 'int'; For input string: "${value}"`);
  return Number(value.trim());
}

/** Reads and checks a page link; `sorts` lists the sort properties the route knows. */
export function pageLink(query: PageLinkParams, sorts: readonly string[]): PageQuery {
  const pageSize = integerParam(query.pageSize, 'pageSize');
  const page = integerParam(query.page, 'page');
  // TB: Validator.validatePageLink
  if (pageSize < 1) throw badRequest(`Incorrect page link page size '${pageSize}'. Page size must be greater than zero.`);
  if (page < 0) throw badRequest(`Incorrect page link page '${page}'. Page must be positive integer.`);
  const result: PageQuery = { pageSize: Math.min(pageSize, 100_000), page };
  if (query.textSearch) result.textSearch = query.textSearch;
  if (query.sortProperty) {
    if (!/^[\p{L}0-9_-]+$/u.test(query.sortProperty)) throw badRequest('Invalid sort property');
    if (!sorts.includes(query.sortProperty)) throw badRequest(`Unsupported sort property '${query.sortProperty}'! Supported: ${sorts.join(', ')}`);
    result.sortProperty = query.sortProperty;
    const order = (query.sortOrder || 'ASC').toUpperCase();
    if (order !== 'ASC' && order !== 'DESC') throw badRequest(`Unsupported sort order '${query.sortOrder}'! Only 'ASC' or 'DESC' types are allowed.`);
    result.sortOrder = order;
  }
  return result;
}

/** Spring's boolean parsing (spec §1.5): true/on/yes/1, false/off/no/0, any case; empty = absent. */
export function booleanParam(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  const v = value.trim().toLowerCase();
  if (['true', 'on', 'yes', '1'].includes(v)) return true;
  if (['false', 'off', 'no', '0'].includes(v)) return false;
  throw badRequest(`Failed to convert value of type 'java.lang.String' to required type 'boolean' for parameter '${name}'; Invalid boolean value [${value}]`);
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An optional uuid query parameter; empty = absent (the Java client sends `deviceProfileId=`); bad -> 400 as TB. */
export function uuidParam(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (!UUID_RE.test(value)) throw badRequest(`Invalid UUID string: ${value}`);
  return value.toLowerCase();
}
