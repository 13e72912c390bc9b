/**
 * Authentication of a WebSocket session with an admin access token (the same JWT as the REST API), answering with
 * ThingsBoard's close reasons (spec §1.2).
 */
import type {} from '@fastify/jwt';
import type { FastifyInstance } from 'fastify';
import type { AdminPrincipal } from '../context.ts';

/** A verified token: who it is for and when it stops being valid (epoch ms; undefined = never). */
export interface WsIdentity {
  principal: AdminPrincipal;
  expiresAt: number | undefined;
}

/** ThingsBoard's close reasons for rejected tokens. */
export const AUTH_REASON = {
  invalid: 'Invalid JWT token: ', // TB: trailing space, exactly
  expired: 'JWT Token expired',
  noScopes: "JWT Token doesn't have any scopes",
  missing: 'Token is invalid',
  apiKeyInactive: 'API key auth is not active',
} as const;

/** Verifies an access token; returns the identity or ThingsBoard's reason for refusing it. */
export function verifyWsToken(app: FastifyInstance, token: string | null | undefined): WsIdentity | { reason: string } {
  if (!token) return { reason: AUTH_REASON.missing };
  let claims: Record<string, unknown>;
  try {
    claims = app.jwt.verify<Record<string, unknown>>(token);
  } catch (err) {
    const code = (err as { code?: string }).code;
    // TB: an expired token and a bad signature both read "JWT Token expired"; anything else is malformed.
    return { reason: code === 'FAST_JWT_EXPIRED' || code === 'FAST_JWT_INVALID_SIGNATURE' ? AUTH_REASON.expired : AUTH_REASON.invalid };
  }
  const scopes = Array.isArray(claims.scopes) ? claims.scopes : [];
  if (scopes.length === 0) return { reason: AUTH_REASON.noScopes };
  // A refresh token is not an access token.
  if (scopes.includes('REFRESH_TOKEN') || typeof claims.tenantId !== 'string' || typeof claims.userId !== 'string' || typeof claims.sub !== 'string') {
    return { reason: AUTH_REASON.invalid };
  }
  return {
    principal: { userId: claims.userId, tenantId: claims.tenantId, email: claims.sub, authority: typeof scopes[0] === 'string' ? scopes[0] : 'TENANT_ADMIN' },
    expiresAt: typeof claims.exp === 'number' ? claims.exp * 1000 : undefined,
  };
}

/** TB: the first `token=` parameter of the query, taken as it is (not URL-decoded); `tokenExtra=` does not match. */
export function queryToken(url: string | undefined): string | undefined {
  const query = url?.split('?', 2)[1];
  if (!query) return undefined;
  for (const part of query.split('&')) if (part.startsWith('token=')) return part.slice('token='.length);
  return undefined;
}
