/**
 * Block-wise request bodies (RFC 7959 §2.5). A body is identified by endpoint, method, URI and Request-Tag
 * (RFC 9175 §3), not by token: libcoap sends each block with a new token. node-coap keys by token, so the
 * transport reassembles bodies itself and hands node-coap the whole request.
 */
import { EXCHANGE_LIFETIME_MS } from './exchanges.ts';

interface Transfer {
  parts: Buffer[];
  received: number;
  expires: number;
}

/** What one block does to its transfer. */
export type BlockResult =
  | { kind: 'continue' }
  | { kind: 'complete'; payload: Buffer }
  | { kind: 'incomplete' }
  | { kind: 'too-large' };

/** Bounded set of bodies being received: at most `maxTransfers` at once, each up to `maxPayload` bytes. */
export class Block1Assembler {
  private readonly transfers = new Map<string, Transfer>();

  constructor(
    private readonly maxPayload: number,
    private readonly maxTransfers = 1024,
    private readonly lifetimeMs = EXCHANGE_LIFETIME_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Adds block `num` of `size` bytes. RFC 7959 §2.2: the offset is NUM x size of this block. */
  accept(key: string, block: { num: number; more: boolean; size: number }, payload: Buffer): BlockResult {
    const now = this.now();
    let t = this.transfers.get(key);
    if (t && t.expires <= now) {
      this.transfers.delete(key);
      t = undefined;
    }
    if (block.num === 0) {
      this.transfers.delete(key);
      t = { parts: [], received: 0, expires: now + this.lifetimeMs };
      this.evictFor();
      this.transfers.set(key, t);
    }
    // RFC 7959 §2.9.2: a block that does not continue what was received is 4.08 Request Entity Incomplete.
    if (!t || block.num * block.size !== t.received) {
      this.transfers.delete(key);
      return { kind: 'incomplete' };
    }
    if (t.received + payload.length > this.maxPayload) {
      this.transfers.delete(key);
      return { kind: 'too-large' };
    }
    t.parts.push(payload);
    t.received += payload.length;
    if (block.more) return { kind: 'continue' };
    this.transfers.delete(key);
    return { kind: 'complete', payload: Buffer.concat(t.parts, t.received) };
  }

  get size(): number {
    return this.transfers.size;
  }

  clear(): void {
    this.transfers.clear();
  }

  private evictFor(): void {
    const now = this.now();
    for (const [key, t] of this.transfers) {
      if (t.expires > now && this.transfers.size < this.maxTransfers) break;
      this.transfers.delete(key);
    }
  }
}
