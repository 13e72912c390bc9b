/**
 * JSON schema fragments shared by the admin routes. They validate requests (fastify + ajv) and
 * document them in the OpenAPI document (@fastify/swagger). Response bodies are left without
 * schemas on purpose: fast-json-stringify would drop fields that are not declared.
 */

/** Security requirement of every authenticated route (either header works). */
export const SECURED: { [scheme: string]: string[] }[] = [{ 'X-Authorization': [] }, { bearerAuth: [] }];

/** Security schemes for the OpenAPI document. */
export const SECURITY_SCHEMES = {
  'X-Authorization': {
    type: 'apiKey',
    in: 'header',
    name: 'X-Authorization',
    description: 'ThingsBoard style: `Bearer <token>` from POST /api/auth/login, or `ApiKey <value>` from POST /api/apiKey',
  },
  bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
} as const;

/** Path parameters that are all uuids. */
export function uuidParams(...names: string[]): Record<string, unknown> {
  return {
    type: 'object',
    required: names,
    properties: Object.fromEntries(names.map((name) => [name, { type: 'string', format: 'uuid' }])),
  };
}

/** Path parameters: one uuid plus plain strings. */
export function paramsWith(uuidName: string, ...strings: string[]): Record<string, unknown> {
  return {
    type: 'object',
    required: [uuidName, ...strings],
    properties: {
      [uuidName]: { type: 'string', format: 'uuid' },
      ...Object.fromEntries(strings.map((name) => [name, { type: 'string' }])),
    },
  };
}

/** ThingsBoard paging parameters. */
export const PAGE_QUERY_PROPERTIES = {
  pageSize: { type: 'integer', minimum: 1, maximum: 100000, description: 'Maximum amount of entities in one page' },
  page: { type: 'integer', minimum: 0, description: 'Sequence number of page starting from 0' },
  textSearch: { type: 'string', description: 'Case-insensitive substring filter on the name' },
  sortProperty: { type: 'string', description: 'Property to sort by, e.g. createdTime or name' },
  sortOrder: { type: 'string', enum: ['ASC', 'DESC'] },
} as const;

/** Query schema for a paged list. */
export const PAGE_QUERY = {
  type: 'object',
  required: ['pageSize', 'page'],
  properties: PAGE_QUERY_PROPERTIES,
} as const;

/** Any JSON object body. */
export const OBJECT_BODY = { type: 'object', additionalProperties: true } as const;
