/**
 * The export Sink port (DESIGN "Shape of the code"): core's delivery hands batches of messages to a destination
 * adapter (src/export/). Core owns the interface, so the arrow points into core.
 */
import type { ExportDestination, ExportMessage } from '../export/model.ts';

/** A delivery the destination refused or did not answer; `retryAfterMs` when it said when to come back (429/503). */
export class SinkError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'SinkError';
  }
}

export interface ExportSink {
  /** Resolves once the destination accepted every message; throws (preferably a SinkError) otherwise. */
  deliver(messages: ExportMessage[]): Promise<void>;
  close(): Promise<void>;
}

/** Opens a sink for a destination; the composition root supplies the adapters. */
export type ExportSinkFactory = (destination: ExportDestination) => ExportSink;
