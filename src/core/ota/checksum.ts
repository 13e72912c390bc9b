/**
 * Package checksums exactly as ThingsBoard computes and formats them (spec thingsboard-ota §2): the hash bytes in
 * order as lowercase hex, no prefix (Guava HashCode.toString()). CRC32 and MURMUR3_* are Guava's little-endian byte
 * order, not the usual big-endian hex of the value. Every hasher is incremental, so uploads are hashed as they stream.
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { FleetgateError } from '../errors.ts';
import { Murmur3x64_128, Murmur3x86_32 } from './murmur3.ts';

/** TB ChecksumAlgorithm [OTAU]. */
export const CHECKSUM_ALGORITHMS = ['MD5', 'SHA256', 'SHA384', 'SHA512', 'CRC32', 'MURMUR3_32', 'MURMUR3_128'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

/** A running checksum. */
export interface Checksummer {
  update(data: Buffer): void;
  /** Lowercase hex in ThingsBoard's format. */
  hex(): string;
}

/**
 * The algorithm named by a request parameter, case-insensitive as TB's `valueOf(upperCase)` (spec §1.2 R2 step 3);
 * anything else -> 400 with Java's enum message.
 */
export function parseChecksumAlgorithm(text: string): ChecksumAlgorithm {
  const upper = text.toUpperCase();
  if (!(CHECKSUM_ALGORITHMS as readonly string[]).includes(upper)) {
    throw new FleetgateError('INVALID_ARGUMENT', `No enum constant org.thingsboard.server.common.data.ota.ChecksumAlgorithm.${upper}`);
  }
  return upper as ChecksumAlgorithm;
}

/** Starts a checksum of `algorithm`. */
export function createChecksummer(algorithm: ChecksumAlgorithm): Checksummer {
  switch (algorithm) {
    case 'MD5':
    case 'SHA256':
    case 'SHA384':
    case 'SHA512': {
      const hash = createHash(algorithm.toLowerCase());
      return { update: (d) => void hash.update(d), hex: () => hash.digest('hex') };
    }
    case 'CRC32': {
      let value = 0;
      return {
        update: (d) => void (value = crc32(d, value)),
        // TB: Guava HashCode.fromInt(crc) -> the int's bytes little-endian.
        hex: () => {
          const out = Buffer.alloc(4);
          out.writeUInt32LE(value >>> 0);
          return out.toString('hex');
        },
      };
    }
    case 'MURMUR3_32': {
      const m = new Murmur3x86_32();
      return { update: (d) => void m.update(d), hex: () => m.digest().toString('hex') };
    }
    case 'MURMUR3_128': {
      const m = new Murmur3x64_128();
      return { update: (d) => void m.update(d), hex: () => m.digest().toString('hex') };
    }
  }
}

/** The checksum of a whole buffer (tests, small data). */
export function checksumOf(algorithm: ChecksumAlgorithm, data: Buffer): string {
  const c = createChecksummer(algorithm);
  c.update(data);
  return c.hex();
}
