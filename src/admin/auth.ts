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
import { UserSecurity } from '../core/user-security.ts';
import { actorOf, principalOf, setPrincipal, type AdminDeps } from './context.ts';
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

/** The credentials a request carries: `X-Authorization` first, `Authorization` only without it (TB). */
export function requestCredentials(req: FastifyRequest): { kind: 'jwt' | 'apiKey'; value: string } | undefined {
  for (const name of ['x-authorization', 'authorization']) {
    const header = req.headers[name];
    const value = Array.isArray(header) ? header[0] : header;
    if (!value) continue;
    // TB 4.3 (spec §6.4): case-sensitive prefix, one space, the rest untrimmed is the value.
    if (value.startsWith('ApiKey ')) return { kind: 'apiKey', value: value.slice('ApiKey '.length) };
    const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
    if (match) return { kind: 'jwt', value: match[1] };
    if (name === 'x-authorization') return undefined;
  }
  return undefined;
}

/** The bearer token of a request: `X-Authorization` first, then `Authorization`. */
export function bearerToken(req: FastifyRequest): string | undefined {
  const credentials = requestCredentials(req);
  return credentials?.kind === 'jwt' ? credentials.value : undefined;
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
  // iatMs: the issue time in ms, so a password change outdates exactly the tokens issued before it (TB: whole seconds).
  const iatMs = Date.now();
  const token = app.jwt.sign({ ...access, iss: ISSUER, jti: randomUUID(), iatMs }, { expiresIn: deps.config.jwtExpirySeconds });
  const refreshToken = app.jwt.sign(
    { sub: user.email, scopes: [REFRESH_SCOPE], userId: user.id, isPublic: false, iss: ISSUER, jti: randomUUID(), iatMs },
    { expiresIn: REFRESH_TOKEN_EXPIRY_SECONDS },
  );
  return { token, refreshToken };
}

/** The token's user, unless the user is gone or the token was outdated by a password change (TB: 401 code 11). */
async function tokenUser(deps: AdminDeps, claims: Record<string, unknown>): Promise<User> {
  const user = await deps.core.users.get(claims.userId as string);
  if (!user) throw unauthorized('Authentication failed');
  const issuedAt = typeof claims.iatMs === 'number' ? claims.iatMs : typeof claims.iat === 'number' ? claims.iat * 1000 : undefined;
  if (UserSecurity.outdated(user, issuedAt)) throw unauthorized('Token has expired', 'TOKEN_EXPIRED');
  return user;
}

/**
 * An onRequest hook that admits requests with a valid access token (`Bearer <jwt>`) or API key (`ApiKey <value>`,
 * ThingsBoard 4.3) and records their user. Each request reads the user (or key) from the database, so a password
 * change, a disabled or deleted key, or a deleted user takes effect at once on every node.
 */
export function authenticate(app: FastifyInstance, deps: AdminDeps): (req: FastifyRequest) => Promise<void> {
  return async (req) => {
    const credentials = requestCredentials(req);
    if (!credentials) throw unauthorized('Authentication failed');
    if (credentials.kind === 'apiKey') {
      let user: User;
      try {
        user = await deps.core.userSecurity.authenticateKey(credentials.value, { transport: 'admin', address: req.ip });
      } catch (err) {
        throw err instanceof FleetgateError ? withHttpStatus(err) : err;
      }
      setPrincipal(req, { userId: user.id, tenantId: user.tenantId, email: user.email, authority: user.authority });
      return;
    }
    const claims = verifyToken(app, credentials.value, 'access');
    await tokenUser(deps, claims);
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
      const user = await tokenUser(deps, claims);
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

  app.post<{ Body: { currentPassword?: unknown; newPassword?: unknown } }>(
    '/api/auth/changePassword',
    {
      schema: {
        tags: ['auth'],
        summary: 'Change the password of the logged-in user (changePassword); outdates the tokens issued before, returns a new JWT pair',
        description: "Errors (400): `Current password doesn't match!`, `New password should be different from existing!`, policy messages (6 to 72 characters). API keys are unaffected.",
        security: SECURED,
        body: { type: 'object', properties: { currentPassword: { type: 'string' }, newPassword: { type: 'string' } } },
      },
    },
    async (req) => {
      const principal = principalOf(req);
      const user = await deps.core.userSecurity.changePassword(principal.userId, req.body?.currentPassword, req.body?.newPassword, actorOf(req));
      return issueTokens(app, deps, user);
    },
  );

  app.post('/api/auth/logout', { schema: { tags: ['auth'], summary: 'Log out (tokens are stateless; kept for ThingsBoard clients)', security: SECURED } }, async (_req, reply) => reply.status(200).send());
}
