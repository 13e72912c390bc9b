/**
 * Duplicate detection (RFC 7252 §4.5): remembers each request by endpoint, Message ID and token, so a retransmitted
 * CON (or a repeated NON) is never processed twice. node-coap caches a response only once it is sent, so a
 * retransmission that arrives while the first copy is still being committed would otherwise run again.
 */

/** RFC 7252 §4.8.2 EXCHANGE_LIFETIME: how long a Message ID may be a duplicate. */
export const EXCHANGE_LIFETIME_MS = 247_000;

/** What the transport knows about a request it has already seen. */
export interface Exchange {
  state: 'pending' | 'done';
  /** The exact bytes answered, when the transport sent them itself (replayed on a duplicate). */
  replay?: Buffer;
  /** Pending past its piggyback window: the empty ACK went out, the answer follows as a separate response. */
  separate?: boolean;
  expires: number;
}

/** A bounded, time-limited map of recent exchanges. Oldest entries go first when the bound is reached. */
export class ExchangeCache {
  private readonly entries = new Map<string, Exchange>();
  /** When the oldest entry expires: entries expire in the order they were added, so pruning waits until then. */
  private oldestExpires = Infinity;

  constructor(
    private readonly maxEntries = 250_000,
    private readonly lifetimeMs = EXCHANGE_LIFETIME_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** The key of one request: same endpoint, Message ID and token = same exchange. */
  static key(endpoint: string, messageId: number, token: Buffer): string {
    return `${endpoint}/${messageId}/${token.toString('hex')}`;
  }

  get(key: string): Exchange | undefined {
    const e = this.entries.get(key);
    if (e && e.expires <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  /** Records a request being processed. */
  begin(key: string): void {
    const now = this.now();
    if (now >= this.oldestExpires || this.entries.size >= this.maxEntries) this.prune(now);
    const expires = now + this.lifetimeMs;
    if (this.entries.size === 0) this.oldestExpires = expires;
    this.entries.set(key, { state: 'pending', expires });
  }

  /** Marks a pending request as answered separately (RFC 7252 §5.2.2: its empty ACK was sent). */
  markSeparate(key: string): void {
    const e = this.entries.get(key);
    if (e && e.state === 'pending') e.separate = true;
  }

  /** Marks a request answered; `replay` when the transport wrote the answer itself. */
  finish(key: string, replay?: Buffer): void {
    const e = this.entries.get(key);
    if (!e) return;
    e.state = 'done';
    if (replay) e.replay = replay;
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
    this.oldestExpires = Infinity;
  }

  private prune(now: number): void {
    for (const [key, e] of this.entries) {
      if (e.expires > now && this.entries.size < this.maxEntries) {
        this.oldestExpires = e.expires;
        return;
      }
      this.entries.delete(key);
    }
    this.oldestExpires = Infinity;
  }
}
