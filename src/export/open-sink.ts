/** The export sink adapters by destination type (the composition root hands this to core). */
import type { ExportSinkFactory } from '../core/ports/export-sink.ts';
import { RedisStreamSink } from './redis-stream-sink.ts';
import { WebhookSink } from './webhook-sink.ts';

export const openExportSink: ExportSinkFactory = (destination) =>
  destination.type === 'webhook' ? new WebhookSink(destination) : new RedisStreamSink(destination);
