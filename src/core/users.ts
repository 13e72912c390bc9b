/** Administrator accounts: scrypt password hashes, constant-time checks. */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { UsersApi } from './api.ts';
import { FleetgateError } from './errors.ts';
import { newId, randomAlphanumeric } from './ids.ts';
import { DEFAULT_TENANT_ID, type User } from './model.ts';
import { UniqueViolation, type Store } from './ports/store.ts';

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;
const KEY_LENGTH = 32;

/** `scrypt$<salt b64>$<hash b64>` */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(password, salt, KEY_LENGTH);
  return `scrypt$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, saltText, hashText] = stored.split('$');
  if (scheme !== 'scrypt' || !saltText || !hashText) return false;
  const expected = Buffer.from(hashText, 'base64');
  const actual = await scryptAsync(password, Buffer.from(saltText, 'base64'), expected.length);
  return timingSafeEqual(actual, expected);
}

/** A fixed hash to compare against when the user does not exist, so timing does not reveal which emails exist. */
const DUMMY_HASH = 'scrypt$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';

export class Users implements UsersApi {
  constructor(private readonly store: Store) {}

  async verify(email: string, password: string): Promise<User | undefined> {
    const user = await this.store.findUserByEmail(email);
    const ok = await verifyPassword(password, user?.passwordHash ?? DUMMY_HASH);
    return ok && user ? user : undefined;
  }

  get(id: string): Promise<User | undefined> {
    return this.store.getUser(id);
  }

  async ensureAdmin(email: string, password: string | undefined): Promise<{ created: boolean; generatedPassword?: string }> {
    if (await this.store.findUserByEmail(email)) return { created: false };
    const generated = password ? undefined : randomAlphanumeric(20);
    try {
      await this.store.insertUser({
        id: newId(),
        tenantId: DEFAULT_TENANT_ID,
        email,
        authority: 'TENANT_ADMIN',
        passwordHash: await hashPassword(password ?? generated!),
        createdTime: Date.now(),
      });
    } catch (err) {
      // Another node created it first (nodes starting together on one database): theirs stands.
      if (err instanceof UniqueViolation && err.constraint === 'user_email') return { created: false };
      throw err;
    }
    return { created: true, generatedPassword: generated };
  }

  async setPassword(email: string, password: string): Promise<void> {
    if (password.length < 6) throw new FleetgateError('INVALID_ARGUMENT', 'Password must be at least 6 characters long');
    const user = await this.store.findUserByEmail(email);
    if (!user) throw new FleetgateError('NOT_FOUND', `User ${email} not found`);
    await this.store.updateUserPassword(user.id, await hashPassword(password));
  }
}
