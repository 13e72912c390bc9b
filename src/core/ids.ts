import { randomFillSync } from 'node:crypto';

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** CSPRNG bytes handed out from a pool refilled 4 KiB at a time (one system call per ~250 ids, not one per id). */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function randomByte(): number {
  if (poolOffset >= pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  return pool[poolOffset++];
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * A new entity id: a UUID version 7 (RFC 9562), 48 bits of Unix milliseconds then random bits. Ids made one after
 * another sort together, so inserts land on the last index pages instead of random ones (fewer pages per commit).
 */
export function newId(now = Date.now()): string {
  const b = new Uint8Array(16);
  for (let i = 6; i < 16; i++) b[i] = randomByte();
  b[0] = Math.floor(now / 2 ** 40) & 0xff;
  b[1] = Math.floor(now / 2 ** 32) & 0xff;
  b[2] = (now >>> 24) & 0xff;
  b[3] = (now >>> 16) & 0xff;
  b[4] = (now >>> 8) & 0xff;
  b[5] = now & 0xff;
  b[6] = (b[6] & 0x0f) | 0x70; // version 7
  b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
  const h = Array.from(b, (x) => HEX[x]);
  return `${h[0]}${h[1]}${h[2]}${h[3]}-${h[4]}${h[5]}-${h[6]}${h[7]}-${h[8]}${h[9]}-${h[10]}${h[11]}${h[12]}${h[13]}${h[14]}${h[15]}`;
}

/** `length` random characters of [A-Za-z0-9] from the CSPRNG, like ThingsBoard's generated tokens and names (spec §4, §6). */
export function randomAlphanumeric(length = 20): string {
  let out = '';
  while (out.length < length) {
    const byte = randomByte();
    if (byte < 248) out += ALPHANUMERIC[byte % 62]; // 248 = 4 × 62: rejection keeps every character equally likely
  }
  return out;
}
