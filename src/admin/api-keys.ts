/**
 * API keys as ThingsBoard 4.3 has them (spec §6): POST /api/apiKey, GET /api/apiKeys/{userId},
 * PUT /api/apiKey/{id}/enabled/{true|false}, PUT /api/apiKey/{id}/description (raw body text), DELETE /api/apiKey/{id}.
 * Using a key (`X-Authorization: ApiKey <value>`) is handled by the auth hook (auth.ts).
 */
import type { FastifyInstance } from 'fastify';
import { badRequest } from '../core/errors.ts';
import { actorOf, principalOf, type AdminDeps } from './context.ts';
import { apiKeyJson, pageJson } from './json-shapes.ts';
import { booleanParam, pageLink, PAGE_LINK_PROPERTIES, type PageLinkParams } from './page-link.ts';
import { entityIdInput } from './request-input.ts';
import { OBJECT_BODY, paramsWith, SECURED, uuidParams } from './schemas.ts';

const API_KEY_SORTS = ['createdTime', 'expirationTime', 'description', 'enabled'] as const;

/** Registers the API-key routes. */
export function registerApiKeyRoutes(app: FastifyInstance, deps: AdminDeps): void {
  const security = () => deps.core.userSecurity;

  app.post<{ Body: Record<string, unknown> }>(
    '/api/apiKey',
    {
      schema: {
        tags: ['api keys'],
        summary: 'Create an API key for a user, or update its description/enabled (saveApiKey)',
        description:
          'Body ApiKeyInfo: `userId` {"entityType":"USER","id"}, `description` (required), `enabled` (omitted = false), `expirationTime` ms (0 = never). ' +
          'On create the reply carries `value` — shown this once, stored only as a hash; use it as `X-Authorization: ApiKey <value>`. With `id`: an update, `value` null.',
        security: SECURED,
        body: OBJECT_BODY,
      },
    },
    async (req) => {
      const body = req.body;
      const enabled = body.enabled;
      const expirationTime = body.expirationTime;
      if (enabled !== undefined && enabled !== null && typeof enabled !== 'boolean') throw badRequest('Invalid enabled: a boolean is expected');
      if (expirationTime !== undefined && expirationTime !== null && (typeof expirationTime !== 'number' || !Number.isInteger(expirationTime) || expirationTime < 0)) {
        throw badRequest('Invalid expirationTime: epoch milliseconds (0 = never) are expected');
      }
      const saved = await security().saveKey(
        principalOf(req).tenantId,
        {
          id: entityIdInput(body.id, 'api key id'),
          userId: entityIdInput(body.userId, 'userId'),
          description: body.description as string | undefined,
          enabled: enabled as boolean | undefined,
          expirationTime: expirationTime as number | undefined,
        },
        actorOf(req),
      );
      return apiKeyJson(saved.key, saved.value);
    },
  );

  app.get<{ Params: { userId: string }; Querystring: PageLinkParams }>(
    '/api/apiKeys/:userId',
    {
      schema: {
        tags: ['api keys'],
        summary: "A page of a user's API keys, without values (getUserApiKeys)",
        description: 'Sorts: ' + API_KEY_SORTS.join(', ') + '; `textSearch` on the description.',
        security: SECURED,
        params: uuidParams('userId'),
        querystring: { type: 'object', required: ['pageSize', 'page'], properties: PAGE_LINK_PROPERTIES },
      },
    },
    async (req) => {
      const page = await security().listKeys(principalOf(req).tenantId, req.params.userId.toLowerCase(), pageLink(req.query, API_KEY_SORTS));
      return pageJson(page, (key) => apiKeyJson(key));
    },
  );

  app.put<{ Params: { id: string; enabledValue: string } }>(
    '/api/apiKey/:id/enabled/:enabledValue',
    { schema: { tags: ['api keys'], summary: 'Enable or disable an API key (enableApiKey); takes effect at once', security: SECURED, params: paramsWith('id', 'enabledValue') } },
    async (req) => {
      const enabled = booleanParam(req.params.enabledValue, 'enabledValue');
      if (enabled === undefined) throw badRequest("Parameter 'enabledValue' can't be empty!");
      return apiKeyJson(await security().setEnabled(principalOf(req).tenantId, req.params.id.toLowerCase(), enabled, actorOf(req)));
    },
  );

  // TB stores the raw body text verbatim (the Java client sends it raw, Python JSON-encodes it: quotes included).
  void app.register(async (raw: FastifyInstance) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    raw.put<{ Params: { id: string }; Body: string | undefined }>(
      '/api/apiKey/:id/description',
      {
        schema: {
          tags: ['api keys'],
          summary: 'Set the description of an API key from the raw request body (updateApiKeyDescription)',
          security: SECURED,
          params: uuidParams('id'),
          body: { type: 'string', description: 'The new description, as raw text' },
        },
      },
      async (req) => apiKeyJson(await security().setDescription(principalOf(req).tenantId, req.params.id.toLowerCase(), req.body ?? '', actorOf(req))),
    );
  });

  app.delete<{ Params: { id: string } }>(
    '/api/apiKey/:id',
    { schema: { tags: ['api keys'], summary: 'Delete an API key (deleteApiKey); takes effect at once', security: SECURED, params: uuidParams('id') } },
    async (req, reply) => {
      await security().deleteKey(principalOf(req).tenantId, req.params.id.toLowerCase(), actorOf(req));
      return reply.status(200).send();
    },
  );
}
