/**
 * Seeded randomness and input mutation for the fuzz targets: the same seed gives the same inputs, so every failure
 * found is replayable (`npm run fuzz -- --seed N`).
 */

/** A seeded PRNG (mulberry32): fast, 32-bit state, good enough to drive mutations. */
export class Rng {
  private state: number;
  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** Byte values that often reach edge cases in length fields and varints. */
const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x3f, 0x40, 0xc0, 0x0f, 0x10, 0x20];

/** One random mutation of `input`: bit flip, interesting byte, insert, delete, duplicate, truncate, splice or random. */
export function mutate(rng: Rng, input: Buffer, donor?: Buffer): Buffer {
  const b = Buffer.from(input);
  const at = b.length > 0 ? rng.int(b.length) : 0;
  switch (rng.int(9)) {
    case 0:
      if (b.length > 0) b[at] ^= 1 << rng.int(8);
      return b;
    case 1:
      if (b.length > 0) b[at] = rng.pick(INTERESTING);
      return b;
    case 2:
      return Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(8)), b.subarray(at)]);
    case 3:
      return Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rng.int(8)))]);
    case 4: {
      const end = Math.min(b.length, at + 1 + rng.int(16));
      return Buffer.concat([b.subarray(0, end), b.subarray(at, end), b.subarray(end)]);
    }
    case 5:
      return b.subarray(0, at);
    case 6:
      return donor ? Buffer.concat([b.subarray(0, at), donor.subarray(rng.int(donor.length + 1))]) : b;
    case 7:
      return rng.bytes(rng.int(64));
    default:
      if (b.length > 1) b.writeUInt16BE(rng.pick([0, 1, 0x7fff, 0xffff, b.length, b.length + 1]), Math.min(at, b.length - 2));
      return b;
  }
}

/** `rounds` stacked mutations. */
export function mutateMany(rng: Rng, input: Buffer, rounds: number, donor?: Buffer): Buffer {
  let out = input;
  for (let i = 0; i < rounds; i++) out = mutate(rng, out, donor);
  return out;
}

const KEYS = ['provisionDeviceKey', 'provisionDeviceSecret', 'deviceName', 'credentialsType', 'token', 'clientId', 'username', 'password', 'hash', 'gateway', 'ts', 'values', 'temperature', '', '__proto__', 'constructor', 'a'.repeat(300)];
const SCALARS: unknown[] = [null, true, false, 0, -0, 1, -1, 1.5, 1e308, -1e308, 9007199254740993, 2 ** 63, '', ' ', 'ACCESS_TOKEN', 'X509_CERTIFICATE', 'MQTT_BASIC', 'LWM2M_CREDENTIALS', 'BOGUS', '\u0000', '\ud800', 'é', '1', 'true', 'x'.repeat(1000)];

/** A random JSON value of bounded depth, biased toward the keys and values the parsers care about. */
export function randomJson(rng: Rng, depth = 0): unknown {
  const kind = depth > 3 ? 0 : rng.int(4);
  if (kind === 0 || kind === 1) return rng.pick(SCALARS);
  if (kind === 2) return Array.from({ length: rng.int(4) }, () => randomJson(rng, depth + 1));
  const obj: Record<string, unknown> = {};
  for (let i = rng.int(6); i > 0; i--) obj[rng.pick(KEYS)] = randomJson(rng, depth + 1);
  return obj;
}

/** Text the JSON parsers should see: valid JSON, JSON with random edits, and raw garbage. */
export function jsonInput(rng: Rng, seeds: readonly string[]): Buffer {
  const base = rng.chance(0.5) ? rng.pick(seeds) : JSON.stringify(randomJson(rng)) ?? 'null';
  const bytes = Buffer.from(base, 'utf8');
  return rng.chance(0.35) ? bytes : mutateMany(rng, bytes, 1 + rng.int(4));
}
