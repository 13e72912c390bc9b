/**
 * Password change with token outdating, and API keys as ThingsBoard 4.3 has them (spec §5.2, §6): a key's value is
 * `tb_` + 86 URL-safe Base64 characters (64 random bytes), returned once at creation and stored only as its SHA-256,
 * so a database dump does not hand out working keys. A request with `X-Authorization: ApiKey <value>` runs as the
 * key's user. Every change is audited, and each key's use at most once an hour per node (never the value).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Actor } from './api.ts';
import type { AuditRecorder } from './audit.ts';
import { badRequest, FleetgateError, notFound } from './errors.ts';
import { newId } from './ids.ts';
import type { ApiKey, Page, PageQuery, User } from './model.ts';
import { hashPassword, verifyPassword } from './users.ts';
import type { Store } from './ports/store.ts';

/** TB `security.api_key.value_prefix` default. */
export const API_KEY_PREFIX = 'tb_';
/** How often one key's use is audited at most (per node). */
const USE_AUDIT_INTERVAL_MS = 3_600_000;

const hashOf = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex');

/** What creating or updating a key takes (TB ApiKeyInfo). */
export interface ApiKeyInput {
  id?: string;
  userId?: string;
  description?: string | null;
  enabled?: boolean | null;
  expirationTime?: number | null;
}

/** TB's default password policy (min 6, max 72) with its messages. */
function checkPasswordPolicy(password: string): void {
  const problems: string[] = [];
  if (password.length < 6) problems.push('Password must be 6 or more characters in length.');
  if (password.length > 72) problems.push('Password must be no more than 72 characters in length.');
  if (problems.length > 0) throw badRequest(problems.join('\n'));
}

function checkDescription(description: unknown): string {
  if (typeof description !== 'string' || description.trim() === '') throw badRequest('Validation error: description must not be blank');
  if (description.length > 255) throw badRequest('Validation error: description length must be equal or less than 255');
  return description;
}

export class UserSecurity {
  private readonly lastUseAudited = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly audit: AuditRecorder,
  ) {}

  /** spec §5.2: checks the current password, applies the policy, outdates the user's tokens. Returns the user. */
  async changePassword(userId: string, currentPassword: unknown, newPassword: unknown, actor: Actor): Promise<User> {
    const user = await this.store.getUser(userId);
    if (!user) throw new FleetgateError('UNAUTHORIZED', 'Authentication failed');
    if (typeof currentPassword !== 'string' || !(await verifyPassword(currentPassword, user.passwordHash))) throw badRequest("Current password doesn't match!");
    if (typeof newPassword !== 'string') throw badRequest('Password must be 6 or more characters in length.');
    checkPasswordPolicy(newPassword);
    if (newPassword === currentPassword) throw badRequest('New password should be different from existing!');
    const now = Date.now();
    await this.store.transaction(async (tx) => {
      await tx.updateUserPassword(user.id, await hashPassword(newPassword));
      await tx.setTokensValidAfter(user.id, now);
    });
    await this.audit.action(actor, user.tenantId, { type: 'USER', id: user.id, name: user.email }, 'CREDENTIALS_UPDATED', { passwordChanged: true });
    return { ...user, tokensValidAfter: now };
  }

  private async targetUser(tenantId: string, userId: string | undefined): Promise<User> {
    if (!userId) throw badRequest('Invalid entity id');
    const user = await this.store.getUser(userId);
    if (!user || user.tenantId !== tenantId) throw notFound(`User with id [${userId}] is not found`);
    return user;
  }

  async getKey(tenantId: string, id: string): Promise<ApiKey> {
    const key = await this.store.getApiKey(id);
    if (!key || key.tenantId !== tenantId) throw notFound(`Api key with id [${id}] is not found`);
    return key;
  }

  /** POST /api/apiKey: creates (returns the value once) or, with `id`, updates description and enabled. */
  async saveKey(tenantId: string, input: ApiKeyInput, actor: Actor): Promise<{ key: ApiKey; value: string | null }> {
    const user = await this.targetUser(tenantId, input.userId);
    const description = checkDescription(input.description);
    if (input.id) {
      const existing = await this.getKey(tenantId, input.id);
      if (existing.userId !== user.id) throw badRequest('Cannot update API key user id!');
      if (input.expirationTime !== undefined && input.expirationTime !== null && input.expirationTime !== existing.expirationTime) throw badRequest('Cannot update API key expiration time!');
      const enabled = input.enabled ?? existing.enabled;
      await this.store.updateApiKey(existing.id, { description, enabled });
      const key = { ...existing, description, enabled };
      await this.audit.action(actor, tenantId, { type: 'API_KEY', id: key.id, name: description }, 'UPDATED', { userId: key.userId, enabled });
      return { key, value: null };
    }
    const value = API_KEY_PREFIX + randomBytes(64).toString('base64url');
    const key: ApiKey = {
      id: newId(),
      tenantId,
      userId: user.id,
      description,
      enabled: input.enabled ?? false, // TB: an omitted `enabled` is false
      expirationTime: input.expirationTime ?? 0,
      createdTime: Date.now(),
    };
    await this.store.insertApiKey(key, hashOf(value));
    await this.audit.action(actor, tenantId, { type: 'API_KEY', id: key.id, name: description }, 'ADDED', { userId: key.userId, enabled: key.enabled, expirationTime: key.expirationTime });
    return { key, value };
  }

  async listKeys(tenantId: string, userId: string, query: PageQuery): Promise<Page<ApiKey>> {
    await this.targetUser(tenantId, userId);
    return this.store.listApiKeys(userId, query);
  }

  async setEnabled(tenantId: string, id: string, enabled: boolean, actor: Actor): Promise<ApiKey> {
    const key = await this.getKey(tenantId, id);
    await this.store.updateApiKey(id, { enabled });
    await this.audit.action(actor, tenantId, { type: 'API_KEY', id, name: key.description }, 'UPDATED', { userId: key.userId, enabled });
    return { ...key, enabled };
  }

  async setDescription(tenantId: string, id: string, description: unknown, actor: Actor): Promise<ApiKey> {
    const key = await this.getKey(tenantId, id);
    const text = checkDescription(description);
    await this.store.updateApiKey(id, { description: text });
    await this.audit.action(actor, tenantId, { type: 'API_KEY', id, name: text }, 'UPDATED', { userId: key.userId });
    return { ...key, description: text };
  }

  async deleteKey(tenantId: string, id: string, actor: Actor): Promise<void> {
    const key = await this.getKey(tenantId, id);
    await this.store.deleteApiKey(id);
    await this.audit.action(actor, tenantId, { type: 'API_KEY', id, name: key.description }, 'DELETED', { userId: key.userId });
  }

  /** spec §6.4: the user an `ApiKey <value>` header acts for; 401/10 with TB's messages otherwise. */
  async authenticateKey(value: string, source: Actor['source']): Promise<User> {
    const refused = (message: string) => new FleetgateError('UNAUTHORIZED', message);
    if (value === '') throw refused('Invalid username or password');
    const key = await this.store.findApiKeyByHash(hashOf(value));
    if (!key) throw refused('Invalid username or password');
    if (!key.enabled) throw refused('User account is not active');
    const now = Date.now();
    if (key.expirationTime > 0 && key.expirationTime <= now) throw refused('API key is expired');
    const user = await this.store.getUser(key.userId);
    if (!user) throw refused('Invalid username or password');
    const last = this.lastUseAudited.get(key.id) ?? 0;
    if (now - last >= USE_AUDIT_INTERVAL_MS) {
      if (this.lastUseAudited.size > 10_000) this.lastUseAudited.clear();
      this.lastUseAudited.set(key.id, now);
      await this.audit.action({ userId: user.id, userName: user.email, source }, user.tenantId, { type: 'API_KEY', id: key.id, name: key.description }, 'LOGIN', { method: 'API_KEY' });
    }
    return user;
  }

  /** Whether an access or refresh token issued at `issuedAt` (ms) is outdated for the user (password changed since). */
  static outdated(user: User, issuedAt: number | undefined): boolean {
    const after = user.tokensValidAfter ?? 0;
    return after > 0 && (issuedAt === undefined || issuedAt < after);
  }
}
