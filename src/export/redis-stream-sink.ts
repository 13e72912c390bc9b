/**
 * The Redis Streams export sink: one XADD per message (field `message`, the message JSON) to the destination's
 * stream, capped with MAXLEN ~ when set; a batch goes in one pipeline inside MULTI, so it is appended whole or not at all.
 * A batch that timed out may still be applied later (a sent MULTI cannot be called back): until it is answered nothing
 * else goes out on the connection, whose commands Redis runs in order, so no retry or later batch overtakes it; if it
 * was applied after all, its messages are left out of the retry instead of being appended twice.
 */
import { Redis } from 'ioredis';
import { SinkError, type ExportSink } from '../core/ports/export-sink.ts';
import type { ExportMessage, RedisStreamDestination } from '../core/export/model.ts';

/** Characters of message JSON made in one event-loop turn at most (then the sink yields), as the webhook body's slices. */
export const TEXT_SLICE_CHARS = 128 * 1024;

/** The JSON text of each message, yielding to the event loop (setImmediate) after every `sliceChars` characters. */
export async function messageTexts(messages: readonly ExportMessage[], sliceChars = TEXT_SLICE_CHARS): Promise<string[]> {
  const texts: string[] = new Array(messages.length);
  let chars = 0;
  for (let i = 0; i < messages.length; i++) {
    texts[i] = messages[i].json;
    chars += texts[i].length;
    if (chars >= sliceChars && i + 1 < messages.length) {
      chars = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  return texts;
}

export class RedisStreamSink implements ExportSink {
  private readonly redis: Redis;
  private lastError: string | undefined;
  /** The MULTI of a batch that timed out, until Redis answers it (or the connection drops it). */
  private unanswered: Promise<void> | undefined;
  /** Ids of messages a timed-out MULTI appended after all: skipped once when delivered again. */
  private readonly landedLate = new Set<string>();

  constructor(private readonly destination: RedisStreamDestination) {
    this.redis = new Redis(destination.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
      connectTimeout: destination.timeoutMs,
      retryStrategy: (times) => Math.min(times * 200, 5000),
    });
    // Without a listener a connection error would be an unhandled 'error' event: the process would exit.
    this.redis.on('error', (err: Error) => (this.lastError = err.message));
  }

  async deliver(batch: ExportMessage[]): Promise<void> {
    const { stream, maxLen, timeoutMs } = this.destination;
    if (this.unanswered) throw new SinkError(`XADD to ${stream}: an earlier batch that timed out is still unanswered`);
    // The messages' JSON first, in slices of an event-loop turn each (a batch of compact rows is megabytes of text).
    const texts = await messageTexts(batch);
    // Checked again after the turns: nothing goes out behind a batch that timed out meanwhile.
    if (this.unanswered) throw new SinkError(`XADD to ${stream}: an earlier batch that timed out is still unanswered`);
    const keep = this.landedLate.size > 0 ? batch.map((m) => !this.landedLate.has(m.id)) : undefined;
    const messages = keep ? batch.filter((_, i) => keep[i]) : batch;
    if (messages.length === 0) return this.forgetLanded(batch);
    const multi = this.redis.multi();
    batch.forEach((m, i) => {
      if (keep && !keep[i]) return;
      if (maxLen > 0) multi.xadd(stream, 'MAXLEN', '~', maxLen, '*', 'id', m.id, 'message', texts[i]);
      else multi.xadd(stream, '*', 'id', m.id, 'message', texts[i]);
    });
    let timer: NodeJS.Timeout | undefined;
    const exec = multi.exec();
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => {
      this.watchLate(exec, messages);
      reject(new SinkError(`XADD to ${stream}: no answer within ${timeoutMs} ms`));
    }, timeoutMs)));
    try {
      const results = await Promise.race([exec, timeout]);
      const failed = results?.find(([err]) => err);
      if (!results) throw new SinkError(`XADD to ${stream} was aborted`);
      if (failed) throw new SinkError(`XADD to ${stream} failed: ${failed[0]!.message}`);
      this.forgetLanded(batch);
    } catch (err) {
      if (err instanceof SinkError) throw err;
      throw new SinkError(`XADD to ${stream} failed: ${(err as Error).message ?? this.lastError}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Holds the connection until the timed-out MULTI is answered; remembers its messages if Redis applied it. */
  private watchLate(exec: Promise<[Error | null, unknown][] | null>, sent: readonly ExportMessage[]): void {
    this.unanswered = exec
      .then((results) => {
        results?.forEach(([err], i) => err || this.landedLate.add(sent[i].id));
        // A retry comes soon after; ids of batches never retried here (the lane went to another node) must not pile up.
        while (this.landedLate.size > 100_000) this.landedLate.delete(this.landedLate.values().next().value as string);
      }, () => {})
      .finally(() => (this.unanswered = undefined));
  }

  private forgetLanded(batch: readonly ExportMessage[]): void {
    if (this.landedLate.size > 0) for (const m of batch) this.landedLate.delete(m.id);
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
