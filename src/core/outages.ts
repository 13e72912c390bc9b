/**
 * What is down right now (issue 18): the database or the bus. Each outage is logged once when it starts, plainly,
 * with what to do, and once when it ends; the failures in between are only counted. /healthz and the metrics read
 * it.
 */
import type { CoreLogger, CoreObserver } from './core-types.ts';
import { DependencyUnavailableError, type DependencyPart } from './errors.ts';

/** One part's current outage. */
export interface Outage {
  reason: string;
  advice: string;
  /** Date.now() when it began. */
  since: number;
  /** Date.now() of the latest failure. */
  lastFailure: number;
  /** Operations refused since it began. */
  failures: number;
  /** The latest failure, handed to callers refused without trying (see {@link Outages.refusal}). */
  error: DependencyUnavailableError;
  /** Date.now() before which writes are refused without trying: exponential backoff with jitter. */
  retryAt: number;
}

/** Backoff between write attempts while a part is down: 50 ms doubling to at most 1 s, each scaled by 0.5-1 (jitter). */
export function backoffMs(failures: number): number {
  return Math.min(1000, 50 * 2 ** Math.min(failures - 1, 5)) * (0.5 + Math.random() / 2);
}

/** The outage tracker core, the store's health probe and the bus share. */
export class Outages {
  private readonly current = new Map<DependencyPart, Outage>();

  constructor(
    private readonly logger: CoreLogger,
    private readonly observer?: CoreObserver,
  ) {}

  /** Records a failure that means `err.part` is down; logs it when it begins an outage. */
  failed(err: DependencyUnavailableError): void {
    const now = Date.now();
    this.observer?.dependencyFailed?.(err.part);
    const outage = this.current.get(err.part);
    if (outage) {
      outage.failures++;
      outage.lastFailure = now;
      outage.error = err;
      outage.retryAt = now + backoffMs(outage.failures);
      return;
    }
    this.current.set(err.part, { reason: err.reason, advice: err.advice, since: now, lastFailure: now, failures: 1, error: err, retryAt: now + backoffMs(1) });
    this.observer?.dependencyState?.(err.part, false);
    this.logger.error(
      { event: 'outage', part: err.part, reason: err.reason, advice: err.advice },
      `${err.part} unavailable: ${err.reason}. What to do: ${err.advice}. Devices are told to try again later meanwhile.`,
    );
  }

  /** Records that `part` works again (a commit succeeded, the bus reconnected); logs the end of an outage. */
  recovered(part: DependencyPart): void {
    const outage = this.current.get(part);
    if (!outage) return;
    this.current.delete(part);
    this.observer?.dependencyState?.(part, true);
    const seconds = Math.round((Date.now() - outage.since) / 100) / 10;
    this.logger.info({ event: 'recovered', part, downSeconds: seconds, refused: outage.failures }, `${part} available again after ${seconds} s (${outage.failures} operations refused meanwhile)`);
  }

  /**
   * While `part` is down and its backoff has not passed: the error to refuse an operation with at once, so a
   * database that is down or coming back is not hammered by every request. Undefined: go ahead and try.
   */
  refusal(part: DependencyPart): DependencyUnavailableError | undefined {
    const outage = this.current.get(part);
    return outage && Date.now() < outage.retryAt ? outage.error : undefined;
  }

  /** The part's outage, or undefined while it works. */
  of(part: DependencyPart): Outage | undefined {
    return this.current.get(part);
  }
}
