/**
 * The Redis Streams export sink: one XADD per message (field `message`, the message JSON) to the destination's
 * stream, capped with MAXLEN ~ when set; a batch goes in one pipeline inside MULTI, so it is appended whole or not at all.
 */
import { Redis } from 'ioredis';
import { SinkError, type ExportSink } from '../core/ports/export-sink.ts';
import type { ExportMessage, RedisStreamDestination } from '../core/export/model.ts';

export class RedisStreamSink implements ExportSink {
  private readonly redis: Redis;
  private lastError: string | undefined;

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

  async deliver(messages: ExportMessage[]): Promise<void> {
    const { stream, maxLen, timeoutMs } = this.destination;
    const multi = this.redis.multi();
    for (const m of messages) {
      if (maxLen > 0) multi.xadd(stream, 'MAXLEN', '~', maxLen, '*', 'id', m.id, 'message', m.json);
      else multi.xadd(stream, '*', 'id', m.id, 'message', m.json);
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new SinkError(`XADD to ${stream}: no answer within ${timeoutMs} ms`)), timeoutMs)));
    try {
      const results = await Promise.race([multi.exec(), timeout]);
      const failed = results?.find(([err]) => err);
      if (!results) throw new SinkError(`XADD to ${stream} was aborted`);
      if (failed) throw new SinkError(`XADD to ${stream} failed: ${failed[0]!.message}`);
    } catch (err) {
      if (err instanceof SinkError) throw err;
      throw new SinkError(`XADD to ${stream} failed: ${(err as Error).message ?? this.lastError}`);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
