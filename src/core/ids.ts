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
  const t = HEX[Math.floor(now / 2 ** 40) & 0xff] + HEX[Math.floor(now / 2 ** 32) & 0xff] + HEX[(now >>> 24) & 0xff] + HEX[(now >>> 16) & 0xff];
  const version = HEX[(randomByte() & 0x0f) | 0x70]; // version 7
  const variant = HEX[(randomByte() & 0x3f) | 0x80]; // RFC 9562 variant
  let tail = '';
  for (let i = 0; i < 6; i++) tail += HEX[randomByte()];
  return `${t}-${HEX[(now >>> 8) & 0xff]}${HEX[now & 0xff]}-${version}${HEX[randomByte()]}-${variant}${HEX[randomByte()]}-${tail}`;
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

/** Characters of the clock part of a generated access token, in ASCII order. */
const CLOCK_DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** The token clock's tick, ms: tokens made within one tick share their first characters. */
const TOKEN_CLOCK_TICK_MS = 4;

/**
 * A generated access token (spec §6: 20 alphanumeric characters): 3 characters of a clock that turns every 4 ms and
 * wraps after 62³ ticks (~16 minutes), then 17 random characters from the CSPRNG (62^17 ≈ 2^101 unguessable values).
 * Tokens made together share their first characters, so a group of new devices puts its tokens into one or two pages
 * of the unique token index instead of a random page each (issue 17: a page, ~4 KB of WAL, per provisioned device).
 */
export function newAccessToken(now = Date.now()): string {
  const tick = Math.floor(now / TOKEN_CLOCK_TICK_MS) % 238_328; // 62³
  return CLOCK_DIGITS[Math.floor(tick / 3844)] + CLOCK_DIGITS[Math.floor(tick / 62) % 62] + CLOCK_DIGITS[tick % 62] + randomAlphanumeric(17);
}
