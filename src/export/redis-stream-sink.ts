/**
 * The Redis Streams export sink: one XADD per message (field `message`, the message JSON) to the destination's
 * stream, capped with MAXLEN ~ when set; a batch goes in one pipeline inside MULTI, so it is appended whole or not at all.
 *
 * Every batch's outcome is known or reported as a failure, so delivery's accounting (a failed attempt, then the batch
 * again: at least once, duplicates possible) covers every copy that reaches the stream:
 * - ioredis never resends a command on its own after a reconnect (autoResendUnfulfilledCommands off, no offline
 *   queue): a batch sent on a connection that closed before its answer fails ("outcome unknown") and delivery retries it.
 * - A batch that timed out may still be applied later (a sent MULTI cannot be called back): until it is answered
 *   nothing else goes out on the connection, whose commands Redis runs in order, so no retry or later batch overtakes
 *   it; if it was applied after all, its messages are left out of the retry instead of being appended twice.
 * - That wait is bounded (`holdMs`): a connection that never answers (a peer gone silent) is replaced by a new one,
 *   so the sink is never stuck; the batch is then retried on the new connection (a duplicate if the old one was
 *   applied after all, counted as the failed attempt it was).
 */
import { Redis } from 'ioredis';
import { SinkError, type ExportSink } from '../core/ports/export-sink.ts';
import type { ExportMessage, RedisStreamDestination } from '../core/export/model.ts';

/** Options of a RedisStreamSink beyond its destination. */
export interface RedisStreamSinkOptions {
  /** Longest wait for a timed-out batch's late answer before the connection is replaced, ms (default 10 x timeoutMs, at least 30 s). */
  holdMs?: number;
}

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
  private redis: Redis;
  private lastError: string | undefined;
  /** The MULTI of a batch that timed out, until Redis answers it, the connection drops it, or the hold ends. */
  private unanswered: Promise<void> | undefined;
  /** Ids of messages a timed-out MULTI appended after all: skipped once when delivered again. */
  private readonly landedLate = new Set<string>();
  private readonly holdMs: number;
  private closed = false;

  constructor(
    private readonly destination: RedisStreamDestination,
    options: RedisStreamSinkOptions = {},
  ) {
    this.holdMs = options.holdMs ?? Math.max(10 * destination.timeoutMs, 30_000);
    this.redis = this.connect();
  }

  private connect(): Redis {
    const redis = new Redis(this.destination.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      // A command is sent once or fails: never queued while disconnected, never resent after a reconnect, where a
      // batch Redis had applied before the connection dropped would be appended twice behind delivery's back.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      connectTimeout: this.destination.timeoutMs,
      retryStrategy: (times) => Math.min(times * 200, 5000),
    });
    // Without a listener a connection error would be an unhandled 'error' event: the process would exit.
    redis.on('error', (err: Error) => (this.lastError = err.message));
    return redis;
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
    const started = Date.now();
    await this.ready(timeoutMs);
    const redis = this.redis;
    const multi = redis.multi();
    batch.forEach((m, i) => {
      if (keep && !keep[i]) return;
      if (maxLen > 0) multi.xadd(stream, 'MAXLEN', '~', maxLen, '*', 'id', m.id, 'message', texts[i]);
      else multi.xadd(stream, '*', 'id', m.id, 'message', texts[i]);
    });
    let timer: NodeJS.Timeout | undefined;
    let onClose: (() => void) | undefined;
    const exec = multi.exec();
    const lost = new Promise<never>((_, reject) => {
      onClose = () => reject(new SinkError(`XADD to ${stream}: the connection closed before the answer (outcome unknown; delivered again)`));
      redis.once('close', onClose);
    });
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => {
      this.watchLate(redis, exec, messages);
      reject(new SinkError(`XADD to ${stream}: no answer within ${timeoutMs} ms`));
    }, Math.max(1, timeoutMs - (Date.now() - started)))));
    try {
      const results = await Promise.race([exec, timeout, lost]);
      const failed = results?.find(([err]) => err);
      if (!results) throw new SinkError(`XADD to ${stream} was aborted`);
      if (failed) throw new SinkError(`XADD to ${stream} failed: ${failed[0]!.message}`);
      this.forgetLanded(batch);
    } catch (err) {
      if (err instanceof SinkError) throw err;
      throw new SinkError(`XADD to ${stream} failed: ${(err as Error).message ?? this.lastError}`);
    } finally {
      clearTimeout(timer);
      redis.off('close', onClose!);
      lost.catch(() => {});
    }
  }

  /** Waits until the connection is ready (connecting it on first use), at most `timeoutMs`. */
  private async ready(timeoutMs: number): Promise<void> {
    const redis = this.redis;
    if (redis.status === 'ready') return;
    if (this.closed) throw new SinkError('the sink is closed');
    if (redis.status === 'wait') redis.connect().catch(() => {});
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        redis.off('ready', done);
        resolve();
      };
      const timer = setTimeout(() => {
        redis.off('ready', done);
        reject(new SinkError(`Redis stream ${this.destination.stream}: not connected within ${timeoutMs} ms${this.lastError ? ` (${this.lastError})` : ''}`));
      }, timeoutMs);
      redis.once('ready', done);
    });
  }

  /**
   * Holds the sink until the timed-out MULTI is answered (remembering its messages if Redis applied it), its connection
   * closes, or `holdMs` passes: then the connection is replaced, and the batch's outcome stays unknown.
   */
  private watchLate(redis: Redis, exec: Promise<[Error | null, unknown][] | null>, sent: readonly ExportMessage[]): void {
    let timer: NodeJS.Timeout | undefined;
    let onClose: (() => void) | undefined;
    const answered = exec.then((results) => {
      results?.forEach(([err], i) => err || this.landedLate.add(sent[i].id));
      // A retry comes soon after; ids of batches never retried here (the lane went to another node) must not pile up.
      while (this.landedLate.size > 100_000) this.landedLate.delete(this.landedLate.values().next().value as string);
    }, () => {});
    const closed = new Promise<void>((resolve) => {
      onClose = resolve;
      redis.once('close', onClose);
    });
    const held = new Promise<void>((resolve) => (timer = setTimeout(() => {
      if (redis === this.redis && !this.closed) {
        redis.disconnect(); // its late answer is no longer awaited; the next batch goes on a new connection
        this.redis = this.connect();
      }
      resolve();
    }, this.holdMs)));
    timer!.unref?.();
    this.unanswered = Promise.race([answered, closed, held]).finally(() => {
      clearTimeout(timer);
      redis.off('close', onClose!);
      this.unanswered = undefined;
    });
  }

  private forgetLanded(batch: readonly ExportMessage[]): void {
    if (this.landedLate.size > 0) for (const m of batch) this.landedLate.delete(m.id);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.redis.disconnect();
  }
}
