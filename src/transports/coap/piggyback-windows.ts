/**
 * RFC 7252 §5.2.2: a CON request may wait a short time for its answer to ride in the ACK; past that the server
 * sends an empty ACK and the answer later as a CON. One timer watches every open window; they close in the order
 * they opened.
 */

/** A request whose piggyback window may be watched. */
export interface Windowed {
  /** When its window closes (performance.now(), ms); undefined when not watched. */
  deadline?: number;
}

/** The open piggyback windows of a transport. */
export class PiggybackWindows<R extends Windowed> {
  private readonly waiting = new Set<R>();
  private timer: NodeJS.Timeout | undefined;

  /** @param onClosed called for each request whose window closes before it is settled */
  constructor(
    private readonly windowMs: number,
    private readonly onClosed: (request: R) => void,
  ) {}

  /** Opens `request`'s window now. */
  watch(request: R): void {
    request.deadline = performance.now() + this.windowMs;
    this.waiting.add(request);
    if (!this.timer) this.arm(this.windowMs);
  }

  /** The request is being answered (or abandoned): its window no longer matters. */
  settle(request: R): void {
    if (request.deadline === undefined) return;
    request.deadline = undefined;
    this.waiting.delete(request);
  }

  /** Stops the timer (shutdown). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.waiting.clear();
  }

  private arm(ms: number): void {
    this.timer = setTimeout(this.onTimer, Math.max(1, ms));
    this.timer.unref();
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    const now = performance.now();
    for (const request of this.waiting) {
      if (request.deadline! > now) return this.arm(request.deadline! - now);
      this.settle(request);
      this.onClosed(request);
    }
  };
}
