/**
 * Admin authentication as ThingsBoard does it: POST /api/auth/login returns a JWT pair, requests
 * carry `X-Authorization: Bearer <token>` (plain `Authorization: Bearer` works too), and
 * POST /api/auth/token trades a refresh token for a new pair. Tokens are HS256 JWTs with
 * ThingsBoard's claims (sub = email, scopes = [authority], userId, tenantId).
 */
import { randomUUID } from 'node:crypto';
import type {} from '@fastify/jwt';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FleetgateError } from '../core/errors.ts';
import { DEFAULT_TENANT_ID, type User } from '../core/model.ts';
import { recordAuditEntry, auditSource } from './audit.ts';
import { principalOf, setPrincipal, type AdminDeps } from './context.ts';
import { withHttpStatus } from './error-mapping.ts';
import { userJson } from './json-shapes.ts';
import { SECURED } from './schemas.ts';

/** Lifetime of refresh tokens, seconds (ThingsBoard's default `refreshTokenExpTime`). */
export const REFRESH_TOKEN_EXPIRY_SECONDS = 604800;

const REFRESH_SCOPE = 'REFRESH_TOKEN';
const ISSUER = 'fleetgate';

/** Claims of an access token (a subset of ThingsBoard's). */
interface AccessClaims {
  sub: string;
  scopes: string[];
  userId: string;
  tenantId: string;
  enabled: boolean;
  isPublic: boolean;
}

/** A ThingsBoard `JwtPair`. */
export interface JwtPair {
  token: string;
  refreshToken: string;
}

function unauthorized(message: string, code: 'UNAUTHORIZED' | 'TOKEN_EXPIRED' = 'UNAUTHORIZED'): FleetgateError {
  return withHttpStatus(new FleetgateError(code, message));
}

/** The bearer token of a request: `X-Authorization` first, then `Authorization`. */
export function bearerToken(req: FastifyRequest): string | undefined {
  for (const name of ['x-authorization', 'authorization']) {
    const header = req.headers[name];
    const value = Array.isArray(header) ? header[0] : header;
    if (!value) continue;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
    if (match) return match[1];
  }
  return undefined;
}

/** Verifies a token of the given kind; 401 with ThingsBoard's wording when it is expired or not valid. */
function verifyToken(app: FastifyInstance, token: string, kind: 'access' | 'refresh'): Record<string, unknown> {
  let claims: Record<string, unknown>;
  try {
    claims = app.jwt.verify<Record<string, unknown>>(token);
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw code === 'FAST_JWT_EXPIRED' ? unauthorized('Token has expired', 'TOKEN_EXPIRED') : unauthorized('Invalid JWT token');
  }
  const scopes = Array.isArray(claims.scopes) ? claims.scopes : [];
  const isRefresh = scopes.includes(REFRESH_SCOPE);
  if (kind === 'refresh' ? !isRefresh : isRefresh || typeof claims.tenantId !== 'string') {
    throw unauthorized('Invalid JWT token');
  }
  if (typeof claims.userId !== 'string' || typeof claims.sub !== 'string') throw unauthorized('Invalid JWT token');
  return claims;
}

/** Issues an access + refresh token pair for a user. */
export function issueTokens(app: FastifyInstance, deps: AdminDeps, user: User): JwtPair {
  const access: AccessClaims = {
    sub: user.email,
    scopes: [user.authority],
    userId: user.id,
    tenantId: user.tenantId,
    enabled: true,
    isPublic: false,
  };
  const token = app.jwt.sign({ ...access, iss: ISSUER, jti: randomUUID() }, { expiresIn: deps.config.jwtExpirySeconds });
  const refreshToken = app.jwt.sign(
    { sub: user.email, scopes: [REFRESH_SCOPE], userId: user.id, isPublic: false, iss: ISSUER, jti: randomUUID() },
    { expiresIn: REFRESH_TOKEN_EXPIRY_SECONDS },
  );
  return { token, refreshToken };
}

/** An onRequest hook that admits only requests with a valid access token and records their user. */
export function authenticate(app: FastifyInstance): (req: FastifyRequest) => Promise<void> {
  return async (req) => {
    const token = bearerToken(req);
    if (!token) throw unauthorized('Authentication failed');
    const claims = verifyToken(app, token, 'access');
    const scopes = claims.scopes as unknown[];
    setPrincipal(req, {
      userId: claims.userId as string,
      tenantId: claims.tenantId as string,
      email: claims.sub as string,
      authority: typeof scopes[0] === 'string' ? scopes[0] : 'TENANT_ADMIN',
    });
  };
}

const LOGIN_BODY = {
  type: 'object',
  required: ['username', 'password'],
  properties: { username: { type: 'string' }, password: { type: 'string' } },
} as const;

const REFRESH_BODY = {
  type: 'object',
  required: ['refreshToken'],
  properties: { refreshToken: { type: 'string' } },
} as const;

/** Registers the routes that need no token: login and refresh. */
export function registerPublicAuthRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.post<{ Body: { username: string; password: string } }>(
    '/api/auth/login',
    { schema: { tags: ['auth'], summary: 'Log in with email and password; returns a JWT pair', body: LOGIN_BODY } },
    async (req) => {
      const user = await deps.core.users.verify(req.body.username, req.body.password, { transport: 'admin', address: req.ip });
      await recordAuditEntry(deps, {
        tenantId: user?.tenantId ?? DEFAULT_TENANT_ID,
        entityType: 'USER',
        entityId: user?.id ?? null,
        entityName: user?.email ?? req.body.username,
        userId: user?.id ?? null,
        userName: user?.email ?? req.body.username,
        actionType: 'LOGIN',
        actionData: { clientAddress: req.ip },
        actionStatus: user ? 'SUCCESS' : 'FAILURE',
        actionFailureDetails: user ? null : 'Invalid username or password',
        source: auditSource(req),
      });
      if (!user) throw unauthorized('Invalid username or password');
      return issueTokens(app, deps, user);
    },
  );

  app.post<{ Body: { refreshToken: string } }>(
    '/api/auth/token',
    { schema: { tags: ['auth'], summary: 'Trade a refresh token for a new JWT pair', body: REFRESH_BODY } },
    async (req) => {
      const claims = verifyToken(app, req.body.refreshToken, 'refresh');
      const user = await deps.core.users.get(claims.userId as string);
      if (!user) throw unauthorized('Invalid JWT token');
      return issueTokens(app, deps, user);
    },
  );
}

/** Registers the routes about the logged-in user (they need a token). */
export function registerUserRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get('/api/auth/user', { schema: { tags: ['auth'], summary: 'The logged-in user', security: SECURED } }, async (req) => {
    const user = await deps.core.users.get(principalOf(req).userId);
    if (!user) throw unauthorized('Authentication failed');
    return userJson(user);
  });

  app.post('/api/auth/logout', { schema: { tags: ['auth'], summary: 'Log out (tokens are stateless; kept for ThingsBoard clients)', security: SECURED } }, async (_req, reply) => reply.status(200).send());
}
