/**
 * Block-wise notifications (RFC 7959 §2.6). A notification (or the registration's first notification) larger than
 * the observer's block size goes out with its first block, Block2 NUM=0 M=1, an ETag and Size2; the client fetches
 * the rest with GET + Block2. Those GETs are answered here from the cached representation, so every block belongs
 * to the same state: the device API's notifications are deltas and RPCs, which a fresh GET could not rebuild.
 * node-coap's own Block2 cache (used for plain GET responses) cannot serve them: it is keyed by token, libcoap asks
 * for later blocks with new tokens, and its blocks carry no Observe, which node-coap's client needs (see serve()).
 */
import { EXCHANGE_LIFETIME_MS } from './exchanges.ts';
import { uintBuffer, type CoapReply } from './wire.ts';

/** RFC 7959 §2.2: the largest block (SZX 6); node-coap's server uses the same default for plain responses. */
export const DEFAULT_BLOCK_SIZE = 1024;

interface Representation {
  reply: CoapReply;
  payload: Buffer;
  etag: Buffer;
  observe: number;
  blockSize: number;
  expires: number;
  timer: NodeJS.Timeout;
  /** Resolves `fetched` (last block served, replaced, dropped, or the wait ran out). */
  done: () => void;
}

/** A block request: NUM and block size (RFC 7959 §2.2). */
export interface BlockRequest {
  num: number;
  size: number;
}

/** RFC 7959 §2.2: NUM, M and SZX packed into a uint option value. */
export function blockValue(num: number, more: boolean, size: number): Buffer {
  return uintBuffer((num << 4) | (more ? 8 : 0) | (Math.log2(size) - 4));
}

/** Representations of block-wise notifications, one per endpoint and resource path (the newest wins). */
export class NotificationBlocks {
  private readonly entries = new Map<string, Representation>();
  private etagCounter = 0;

  constructor(
    /** How long a lane waits for the client to fetch the remaining blocks before the next notification. */
    private readonly fetchWaitMs: number,
    private readonly lifetimeMs = EXCHANGE_LIFETIME_MS,
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  static key(endpoint: { address: string; port: number }, path: string): string {
    return `${endpoint.address}:${endpoint.port}|${path}`;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Shapes a notification: unchanged when it fits one block; otherwise its first block (RFC 7959 §2.6), with the
   * whole representation cached under `key`. `fetched` resolves once the client has the last block (or gave up).
   */
  shape(key: string, reply: CoapReply, observe: number, blockSize: number): { reply: CoapReply; fetched: Promise<void> } {
    const payload = reply.payload ?? Buffer.alloc(0);
    if (payload.length <= blockSize) return { reply, fetched: Promise.resolve() };
    this.forget(key);
    this.evict();
    this.etagCounter = (this.etagCounter + 1) >>> 0;
    const etag = Buffer.alloc(4);
    etag.writeUInt32BE(this.etagCounter);
    let done!: () => void;
    const fetched = new Promise<void>((resolve) => (done = resolve));
    const entry: Representation = { reply, payload, etag, observe, blockSize, expires: this.now() + this.lifetimeMs, timer: undefined!, done: () => {} };
    entry.timer = setTimeout(() => entry.done(), this.fetchWaitMs);
    entry.timer.unref();
    entry.done = () => {
      clearTimeout(entry.timer);
      done();
    };
    this.entries.set(key, entry);
    return { reply: this.block(entry, 0, blockSize), fetched };
  }

  /**
   * Answers GET + Block2 for a later block of a cached notification; undefined when nothing is cached there.
   * RFC 7641 §3.2 / §4.1: a block request that carries Observe=0 with the observer's token (node-coap re-sends its
   * registration with Block2) gets Observe too, the notification's own sequence number, so the reassembled
   * notification is not taken for an older one.
   */
  serve(key: string, request: BlockRequest, withObserve: boolean): { reply: CoapReply; observe?: number } | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expires <= this.now()) {
      this.forget(key);
      return undefined;
    }
    // RFC 7959 §2.2: the server may use a smaller block than asked for, never a larger one.
    const size = Math.min(request.size, entry.blockSize);
    if (request.num * size >= entry.payload.length) return { reply: { code: '4.02', payload: Buffer.from('Block2 is past the end of the representation'), format: 0 } };
    const reply = this.block(entry, request.num, size);
    if ((request.num + 1) * size >= entry.payload.length) entry.done();
    return withObserve ? { reply, observe: entry.observe } : { reply };
  }

  /** Drops what is cached under `key` (observer gone or a newer representation). */
  forget(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    entry.done();
  }

  clear(): void {
    for (const key of [...this.entries.keys()]) this.forget(key);
  }

  /** RFC 7959 §2.6: each block carries the ETag of the representation it belongs to, and Size2 (§4) its length. */
  private block(entry: Representation, num: number, size: number): CoapReply {
    const start = num * size;
    const more = start + size < entry.payload.length;
    return {
      ...entry.reply,
      payload: entry.payload.subarray(start, start + size),
      options: [
        ...(entry.reply.options ?? []),
        { name: 'Block2', value: blockValue(num, more, size) },
        { name: 'ETag', value: entry.etag },
        { name: 'Size2', value: uintBuffer(entry.payload.length) },
      ],
    };
  }

  private evict(): void {
    const now = this.now();
    for (const [key, e] of this.entries) {
      if (e.expires > now && this.entries.size < this.maxEntries) break;
      this.forget(key);
    }
  }
}
