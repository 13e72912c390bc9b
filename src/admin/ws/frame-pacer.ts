/**
 * The node-wide budget of live update frames (`wsMaxUpdateFramesPerSecond`): stretches the least time between two
 * update frames of a subscription (`wsUpdateIntervalMs`) when so many subscriptions are busy that their frames would
 * exceed the budget.
 *
 * Why: on loopback and small machines every frame costs a socket write whose kernel side (TCP on both ends, waking the
 * reader) is tens of microseconds of the server's CPU, far more than rendering the frame, and ingestion pays for it
 * (bench/RESULTS.md, issue 11). Points are never dropped: a longer interval only gathers more of them into one frame.
 * A few watched devices keep the configured interval; 1,000 busy subscriptions under a budget of 1,000 frames a
 * second get one frame a second each.
 */

/** Counts the subscriptions that sent a live frame in the last window and derives the interval from them. */
export class FramePacer {
  /** Subscriptions that sent a frame in the current window. */
  private senders = new Set<object>();
  private windowEnd = 0;
  private current: number;

  /**
   * @param floorMs the configured `wsUpdateIntervalMs`: the interval never goes below it; 0 turns pacing off (a frame
   *   per commit, as ThingsBoard).
   * @param framesPerSecond the budget; 0 turns it off (the interval stays `floorMs`).
   */
  constructor(
    private readonly floorMs: number,
    private readonly framesPerSecond: number,
  ) {
    this.current = floorMs;
  }

  /** The least time between two update frames of one subscription now, ms. */
  get intervalMs(): number {
    return this.current;
  }

  /** A subscription sent a live update frame at `now` (epoch ms). */
  sent(subscription: object, now: number): void {
    if (this.framesPerSecond <= 0 || this.floorMs <= 0) return;
    if (now >= this.windowEnd) {
      // Busy subscriptions = distinct senders of the window that ended; each may send 1000 / interval frames a second.
      const busy = now - this.windowEnd < this.windowLength() ? this.senders.size : 0; // a long quiet gap: start over
      this.current = Math.max(this.floorMs, Math.ceil((busy * 1000) / this.framesPerSecond));
      this.senders = new Set();
      this.windowEnd = now + this.windowLength();
    }
    this.senders.add(subscription);
  }

  /** A subscription stopped: it no longer counts as busy (sessions that close and others that open within one window are not counted twice). */
  forget(subscription: object): void {
    this.senders.delete(subscription);
  }

  /** A window spans one and a half intervals (at least a second), so a subscription sending every interval is in each. */
  private windowLength(): number {
    return Math.max(1000, Math.ceil(this.current * 1.5));
  }
}
