import { randomInt, randomUUID } from 'node:crypto';

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A new entity id (UUID v4). */
export const newId = (): string => randomUUID();

/** `length` random characters of [A-Za-z0-9] from the CSPRNG, like ThingsBoard's generated tokens and names (spec §4, §6). */
export function randomAlphanumeric(length = 20): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  return out;
}
