/**
 * One shared watchdog for every MQTT connection's silence limit (the CONNECT timeout, then 1.5 × keep-alive,
 * [MQTT-3.1.2-24]) in place of a Timeout per connection: an idle connection costs a Set entry and two small integers
 * instead of a Timeout object and its closure, and a packet costs a field write instead of re-arming a timer.
 *
 * The wheel's clock counts ticks (a small integer, so the fields holding it need no heap number). Each connection notes
 * the tick count when it reads bytes; a tick ends the connections whose silence has reached their limit. The count noted
 * may be up to one tick old and a timer may fire a millisecond early, so a limit of L ticks (the limit in ms, rounded
 * up) ends a connection once L + 2 ticks have passed: never before the limit of real silence, at most about three ticks
 * (750 ms) after it, later only if the process is too busy to run its timers. A stalled process never ends a connection
 * early: ticks are counted, not read off the wall clock.
 */

/** A connection the watchdog watches. */
export interface Watched {
  /** The wheel's tick count when bytes last arrived (or when the limit was set). */
  lastActivity: number;
  /** Silence allowed, in ticks (with a tick of margin). */
  silenceLimitTicks: number;
  /** The limit has passed: the watchdog has already stopped watching. */
  onSilence(): void;
}

/** How often the watchdog looks, ms. */
export const KEEP_ALIVE_TICK_MS = 250;

class KeepAliveWheel {
  /** The clock connections note: ticks since the process's first watched connection. */
  now = 0;
  private readonly watched = new Set<Watched>();
  private timer: NodeJS.Timeout | undefined;

  /** Starts (or restarts) watching `w`: `silenceLimitMs` of silence from now ends it. */
  watch(w: Watched, silenceLimitMs: number): void {
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(), KEEP_ALIVE_TICK_MS);
      this.timer.unref();
    }
    w.silenceLimitTicks = Math.ceil(silenceLimitMs / KEEP_ALIVE_TICK_MS) + 1;
    w.lastActivity = this.now;
    this.watched.add(w);
  }

  unwatch(w: Watched): void {
    this.watched.delete(w);
  }

  /** Connections watched now. */
  get size(): number {
    return this.watched.size;
  }

  private tick(): void {
    const now = ++this.now;
    for (const w of this.watched) {
      if (now - w.lastActivity <= w.silenceLimitTicks) continue;
      this.watched.delete(w);
      try {
        w.onSilence();
      } catch {
        /* a connection reports its own failures; one must never stop the sweep or escape from this timer */
      }
    }
    if (this.watched.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

/** The process's one watchdog, shared by every MQTT transport and connection. */
export const keepAliveWheel = new KeepAliveWheel();
