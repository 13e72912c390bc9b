/**
 * The lean path of the device API's two busiest routes: `POST /api/v1/{token}/telemetry` and
 * `POST /api/v1/{token}/attributes` (spec §8.3), served from Node's `request` event before fastify's router, hooks,
 * content-type parser, per-request logger and reply object (issue 17: together they cost more CPU than the rest of the
 * request). The routes stay registered in fastify (telemetry-routes.ts) and answer everything this path leaves to
 * them, so behaviour is the same byte for byte: this path takes only the plain case — no query string, a token of
 * URL-safe characters other than `x509`, a known Content-Type, a Content-Length between 1 and the body limit, a
 * connection admitted by the connection limit, the app not closing — and hands every other request to fastify
 * (lean-route.ts). It makes the same core calls as the route: authentication with the source address for the
 * throttle, then ingest; 200 with an empty body only after the commit.
 */
import type { FastifyInstance } from 'fastify';
import { authenticate, CLIENT_CERTIFICATE_TOKEN } from './device-request.ts';
import { installLeanRoute, type LeanAnswer, type LeanPathDeps } from './lean-route.ts';

/**
 * `/api/v1/{token}/telemetry|attributes`. Token characters: unreserved and sub-delims of RFC 3986 minus `;` (which
 * routers may treat as a delimiter) and `%` (escapes fastify decodes); anything else goes to fastify. At most 512
 * characters, the router's maxParamLength (app.ts).
 */
const DEVICE_POST = /^\/api\/v1\/([A-Za-z0-9._~!$&'()*+,=:@-]{1,512})\/(telemetry|attributes)$/;

/** A plain 200: fastify sends `content-length: 0` and nothing else of its own. */
const OK: LeanAnswer = { status: 200, body: '' };

/**
 * Puts the lean path in front of `app`'s request handler. Call it once, after `createHttpApp` (the server exists) and
 * before `listen`.
 */
export function installFastDevicePath(app: FastifyInstance, deps: LeanPathDeps): void {
  const { core } = deps;
  installLeanRoute(app, deps.bodyLimit, {
    name: 'device fast path',
    idPrefix: 'f',
    match(url) {
      const match = DEVICE_POST.exec(url);
      if (!match || match[1] === CLIENT_CERTIFICATE_TOKEN) return undefined;
      return { token: match[1]!, attributes: match[2] === 'attributes' };
    },
    async serve(req, { token, attributes }, body) {
      const device = await authenticate(core, token, req.socket.remoteAddress, req.socket);
      // spec §8.3: 200 with an empty body once the data is committed (DESIGN "Data flow").
      if (attributes) await core.telemetry.saveClientAttributesJson(device, body);
      else await core.telemetry.ingestJson(device, body);
      return OK;
    },
  });
}
