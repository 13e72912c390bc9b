/**
 * The lean path of `POST /api/v1/provision` (spec §5.3), served from Node's `request` event before fastify's router,
 * hooks, content-type parser, per-request logger and reply object, as fast-device-path.ts does for telemetry (issue
 * 17: a provisioning storm is every device's first request). The route stays registered in fastify
 * (provision-route.ts) and answers everything this path leaves to it, so behaviour is the same byte for byte: this
 * path takes only the plain case — the exact path without a query string, a known Content-Type, a Content-Length
 * between 1 and the body limit, a connection admitted by the connection limit, the app not closing — and hands every
 * other request to fastify (lean-route.ts). It makes the same core call as the route (the source address for the
 * throttle) and gives the same answer (`provisionAnswer`: 200 or 429 only after the commit).
 */
import type { FastifyInstance } from 'fastify';
import { parseProvisionJson } from '../../core/provisioning/request.ts';
import { installLeanRoute, type LeanPathDeps } from './lean-route.ts';
import { PROVISION_WIRE_CONTENT_TYPE, provisionAnswer } from './provision-route.ts';

/** The one URL taken: the route's path, no query string (spec §5.3). */
const PROVISION_URL = '/api/v1/provision';

/**
 * Puts the lean provisioning path in front of `app`'s request handler (whatever is first then: fastify's, or the
 * device lean path that falls back to it). Call it once, after `createHttpApp` and before `listen`.
 */
export function installFastProvisionPath(app: FastifyInstance, deps: LeanPathDeps): void {
  const { core } = deps;
  installLeanRoute(app, deps.bodyLimit, {
    name: 'provisioning fast path',
    idPrefix: 'p',
    match: (url) => (url === PROVISION_URL ? true : undefined),
    async serve(req, _match, body) {
      const request = parseProvisionJson(body);
      const answer = provisionAnswer(await core.provisioning.provision(request, { transport: 'http', address: req.socket.remoteAddress }));
      return { status: answer.status, retryAfter: answer.retryAfter, contentType: PROVISION_WIRE_CONTENT_TYPE, body: answer.body };
    },
  });
}
