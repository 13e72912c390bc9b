/**
 * Incremental MurmurHash3 (x86_32 and x64_128, seed 0), written for streams: ThingsBoard checksums packages with
 * Guava's Hashing.murmur3_32 / murmur3_128 (spec thingsboard-ota §2), and no maintained npm package hashes a stream
 * (they take a whole buffer) or formats the result as Guava does. 64-bit arithmetic is done on pairs of 32-bit halves
 * (BigInt would be ~50x slower on a 1 GB package). Output bytes follow Guava's HashCode: the 32-bit hash as a
 * little-endian int; the 128-bit one as h1 little-endian then h2 little-endian.
 */

const rotl32 = (x: number, r: number) => ((x << r) | (x >>> (32 - r))) >>> 0;

/** MurmurHash3_x86_32, fed in pieces. */
export class Murmur3x86_32 {
  private h = 0;
  private length = 0;
  private readonly tail = Buffer.alloc(4);
  private tailLength = 0;

  update(data: Buffer): this {
    this.length += data.length;
    let i = 0;
    while (this.tailLength > 0 && this.tailLength < 4 && i < data.length) this.tail[this.tailLength++] = data[i++];
    if (this.tailLength === 4) {
      this.block(this.tail.readUInt32LE(0));
      this.tailLength = 0;
    }
    for (; i + 4 <= data.length; i += 4) this.block(data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    while (i < data.length) this.tail[this.tailLength++] = data[i++];
    return this;
  }

  private block(k: number): void {
    k = Math.imul(k, 0xcc9e2d51);
    k = rotl32(k, 15);
    k = Math.imul(k, 0x1b873593);
    let h = this.h ^ k;
    h = rotl32(h, 13);
    this.h = (Math.imul(h, 5) + 0xe6546b64) >>> 0;
  }

  /** The 4 hash bytes in Guava's order. */
  digest(): Buffer {
    let h = this.h;
    if (this.tailLength > 0) {
      let k = 0;
      for (let j = this.tailLength - 1; j >= 0; j--) k = (k << 8) | this.tail[j];
      k = Math.imul(k, 0xcc9e2d51);
      k = rotl32(k, 15);
      k = Math.imul(k, 0x1b873593);
      h ^= k;
    }
    h ^= this.length | 0;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    const out = Buffer.alloc(4);
    out.writeUInt32LE(h >>> 0);
    return out;
  }
}

// 64-bit values as (hi, lo) uint32 pairs; results of the helpers land in these two variables.
let rHi = 0;
let rLo = 0;

/** (aHi,aLo) * (bHi,bLo) mod 2^64 -> rHi, rLo. */
function mul64(aHi: number, aLo: number, bHi: number, bLo: number): void {
  const a0 = aLo & 0xffff;
  const a1 = aLo >>> 16;
  const b0 = bLo & 0xffff;
  const b1 = bLo >>> 16;
  const t = a0 * b0;
  const m1 = a1 * b0;
  const m2 = a0 * b1;
  const carry = ((t >>> 16) + (m1 & 0xffff) + (m2 & 0xffff)) >>> 16;
  const highOfLow = a1 * b1 + (m1 >>> 16) + (m2 >>> 16) + carry;
  rLo = Math.imul(aLo, bLo) >>> 0;
  rHi = (highOfLow + Math.imul(aHi, bLo) + Math.imul(aLo, bHi)) >>> 0;
}

/** (hi,lo) rotated left by r (0 < r < 64) -> rHi, rLo. */
function rotl64(hi: number, lo: number, r: number): void {
  if (r >= 32) {
    const t = hi;
    hi = lo;
    lo = t;
    r -= 32;
  }
  if (r === 0) {
    rHi = hi >>> 0;
    rLo = lo >>> 0;
    return;
  }
  rHi = ((hi << r) | (lo >>> (32 - r))) >>> 0;
  rLo = ((lo << r) | (hi >>> (32 - r))) >>> 0;
}

/** (aHi,aLo) + (bHi,bLo) mod 2^64 -> rHi, rLo. */
function add64(aHi: number, aLo: number, bHi: number, bLo: number): void {
  const lo = aLo + bLo;
  rLo = lo >>> 0;
  rHi = (aHi + bHi + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

const C1_HI = 0x87c37b91;
const C1_LO = 0x114253d5;
const C2_HI = 0x4cf5ad43;
const C2_LO = 0x2745937f;

/** fmix64 of (hi,lo) -> rHi, rLo. */
function fmix64(hi: number, lo: number): void {
  lo = (lo ^ (hi >>> 1)) >>> 0; // k ^= k >>> 33
  mul64(hi, lo, 0xff51afd7, 0xed558ccd);
  hi = rHi;
  lo = (rLo ^ (rHi >>> 1)) >>> 0;
  mul64(hi, lo, 0xc4ceb9fe, 0x1a85ec53);
  hi = rHi;
  lo = (rLo ^ (rHi >>> 1)) >>> 0;
  rHi = hi;
  rLo = lo;
}

/** MurmurHash3_x64_128, fed in pieces. */
export class Murmur3x64_128 {
  private h1Hi = 0;
  private h1Lo = 0;
  private h2Hi = 0;
  private h2Lo = 0;
  private length = 0;
  private readonly tail = Buffer.alloc(16);
  private tailLength = 0;

  update(data: Buffer): this {
    this.length += data.length;
    let i = 0;
    if (this.tailLength > 0) {
      while (this.tailLength < 16 && i < data.length) this.tail[this.tailLength++] = data[i++];
      if (this.tailLength < 16) return this;
      this.block(this.tail, 0);
      this.tailLength = 0;
    }
    for (; i + 16 <= data.length; i += 16) this.block(data, i);
    while (i < data.length) this.tail[this.tailLength++] = data[i++];
    return this;
  }

  private mixK1(hi: number, lo: number): void {
    mul64(hi, lo, C1_HI, C1_LO);
    rotl64(rHi, rLo, 31);
    mul64(rHi, rLo, C2_HI, C2_LO);
    this.h1Hi = (this.h1Hi ^ rHi) >>> 0;
    this.h1Lo = (this.h1Lo ^ rLo) >>> 0;
  }

  private mixK2(hi: number, lo: number): void {
    mul64(hi, lo, C2_HI, C2_LO);
    rotl64(rHi, rLo, 33);
    mul64(rHi, rLo, C1_HI, C1_LO);
    this.h2Hi = (this.h2Hi ^ rHi) >>> 0;
    this.h2Lo = (this.h2Lo ^ rLo) >>> 0;
  }

  private block(b: Buffer, at: number): void {
    this.mixK1(b.readUInt32LE(at + 4), b.readUInt32LE(at));
    rotl64(this.h1Hi, this.h1Lo, 27);
    add64(rHi, rLo, this.h2Hi, this.h2Lo);
    mul64(rHi, rLo, 0, 5);
    add64(rHi, rLo, 0, 0x52dce729);
    this.h1Hi = rHi;
    this.h1Lo = rLo;
    this.mixK2(b.readUInt32LE(at + 12), b.readUInt32LE(at + 8));
    rotl64(this.h2Hi, this.h2Lo, 31);
    add64(rHi, rLo, this.h1Hi, this.h1Lo);
    mul64(rHi, rLo, 0, 5);
    add64(rHi, rLo, 0, 0x38495ab5);
    this.h2Hi = rHi;
    this.h2Lo = rLo;
  }

  /** The 16 hash bytes in Guava's order. */
  digest(): Buffer {
    const n = this.tailLength;
    if (n > 8) {
      const t = Buffer.alloc(8);
      this.tail.copy(t, 0, 8, n);
      this.mixK2(t.readUInt32LE(4), t.readUInt32LE(0));
    }
    if (n > 0) {
      const t = Buffer.alloc(8);
      this.tail.copy(t, 0, 0, Math.min(n, 8));
      this.mixK1(t.readUInt32LE(4), t.readUInt32LE(0));
    }
    const lenHi = Math.floor(this.length / 0x100000000) >>> 0;
    const lenLo = this.length >>> 0;
    let h1Hi = (this.h1Hi ^ lenHi) >>> 0;
    let h1Lo = (this.h1Lo ^ lenLo) >>> 0;
    let h2Hi = (this.h2Hi ^ lenHi) >>> 0;
    let h2Lo = (this.h2Lo ^ lenLo) >>> 0;
    add64(h1Hi, h1Lo, h2Hi, h2Lo);
    h1Hi = rHi;
    h1Lo = rLo;
    add64(h2Hi, h2Lo, h1Hi, h1Lo);
    h2Hi = rHi;
    h2Lo = rLo;
    fmix64(h1Hi, h1Lo);
    h1Hi = rHi;
    h1Lo = rLo;
    fmix64(h2Hi, h2Lo);
    h2Hi = rHi;
    h2Lo = rLo;
    add64(h1Hi, h1Lo, h2Hi, h2Lo);
    h1Hi = rHi;
    h1Lo = rLo;
    add64(h2Hi, h2Lo, h1Hi, h1Lo);
    h2Hi = rHi;
    h2Lo = rLo;
    const out = Buffer.alloc(16);
    out.writeUInt32LE(h1Lo, 0);
    out.writeUInt32LE(h1Hi, 4);
    out.writeUInt32LE(h2Lo, 8);
    out.writeUInt32LE(h2Hi, 12);
    return out;
  }
}
