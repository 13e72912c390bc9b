/**
 * Checksums as ThingsBoard computes and formats them (spec thingsboard-ota §2): the spec's vectors, the known
 * MurmurHash3 vectors in Guava's byte order, and the same result however a stream is cut.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { CHECKSUM_ALGORITHMS, checksumOf, createChecksummer, parseChecksumAlgorithm } from '../../src/core/ota/checksum.ts';

describe('OTA checksums', () => {
  it("the spec's vectors (§2), byte 0x01 and ASCII 123456789", () => {
    const one = Buffer.from([1]);
    assert.equal(checksumOf('SHA256', one), '4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a');
    assert.equal(checksumOf('MD5', one), '55a54008ad1ba589aa210d2629c1df41');
    assert.equal(checksumOf('CRC32', one), '1bdf05a5');
    assert.equal(checksumOf('MURMUR3_32', one), 'abd15ae4');
    assert.equal(checksumOf('MURMUR3_128', one), '16fe7483905cce7a85670e43e4678877');
    const digits = Buffer.from('123456789');
    assert.equal(checksumOf('CRC32', digits), '2639f4cb', 'CRC-32 0xCBF43926, little-endian as Guava');
    assert.equal(checksumOf('MURMUR3_32', digits), '82f3feb4');
    assert.equal(checksumOf('MURMUR3_128', digits), 'a4cc66db5e64843c05a11e3ac7faf899');
  });

  it('known MurmurHash3 vectors: x86_32 "hello" = 0x248bfa47, x64_128 of the quick brown fox = e34bbc7bbc071b6c 7a433ca9c49a9347', () => {
    assert.equal(checksumOf('MURMUR3_32', Buffer.from('hello')), '47fa8b24');
    assert.equal(checksumOf('MURMUR3_128', Buffer.from('The quick brown fox jumps over the lazy dog')), '6c1b07bc7bbc4be347939ac4a93c437a');
    assert.equal(checksumOf('MURMUR3_32', Buffer.alloc(0)), '00000000');
    assert.equal(checksumOf('MURMUR3_128', Buffer.alloc(0)), '00000000000000000000000000000000');
  });

  it('SHA384 and SHA512 are the plain digests; every algorithm gives the same result however the stream is cut', () => {
    const data = randomBytes(100_003);
    assert.equal(checksumOf('SHA384', data), createHash('sha384').update(data).digest('hex'));
    assert.equal(checksumOf('SHA512', data), createHash('sha512').update(data).digest('hex'));
    for (const algorithm of CHECKSUM_ALGORITHMS) {
      const whole = checksumOf(algorithm, data);
      for (const step of [1, 3, 7, 15, 16, 17, 4096, 65536]) {
        const c = createChecksummer(algorithm);
        for (let i = 0; i < data.length; i += step) c.update(data.subarray(i, i + step));
        assert.equal(c.hex(), whole, `${algorithm} in pieces of ${step}`);
      }
    }
  });

  it("algorithm names are case-insensitive; unknown ones get Java's enum message", () => {
    assert.equal(parseChecksumAlgorithm('murmur3_128'), 'MURMUR3_128');
    assert.throws(() => parseChecksumAlgorithm('sha1'), /No enum constant org\.thingsboard\.server\.common\.data\.ota\.ChecksumAlgorithm\.SHA1/);
  });
});
