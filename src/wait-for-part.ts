/**
 * Start-up while the database or Redis is down (issue 18): instead of exiting at once, the node tries again with
 * backoff and jitter, saying on each try what it waits for and why, until the part answers. Errors that are not an
 * outage (a wrong password, a bad URL, a failed migration) still end the start.
 */
import type { DependencyPart, DependencyUnavailableError } from './core/errors.ts';
import type { Logger } from './log.ts';

/** Delay before start-up try `attempt` + 1: 0.5 s doubling to at most 10 s, scaled by 0.5-1 (jitter). */
export function startupRetryMs(attempt: number): number {
  return Math.round(Math.min(10_000, 500 * 2 ** Math.min(attempt - 1, 5)) * (0.5 + Math.random() / 2));
}

/**
 * Runs `open` until it succeeds. A failure `classify` recognises as an outage of `part` is logged and retried; any
 * other failure is thrown.
 */
export async function waitForPart<T>(
  part: DependencyPart,
  open: () => Promise<T>,
  classify: (err: unknown) => DependencyUnavailableError | undefined,
  logger: Logger,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
): Promise<T> {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      const value = await open();
      if (attempt > 1) logger.info({ event: 'dependency_ready', part, waitedSeconds: Math.round((Date.now() - started) / 1000) }, `${part} reached after ${attempt} tries; starting`);
      return value;
    } catch (err) {
      const outage = classify(err);
      if (!outage) throw err;
      const delay = startupRetryMs(attempt);
      logger.warn(
        { event: 'waiting_for_dependency', part, reason: outage.reason, attempt, retryInMs: delay },
        `waiting for the ${part}: ${outage.reason}; trying again in ${(delay / 1000).toFixed(1)} s (${outage.advice})`,
      );
      await sleep(delay);
    }
  }
}
