/**
 * One shared watchdog for every MQTT connection's silence limit (the CONNECT timeout, then 1.5 × keep-alive,
 * [MQTT-3.1.2-24]) in place of a Timeout per connection: an idle connection costs a Set entry and two numbers instead
 * of a Timeout object and its closure, and a packet costs a field write instead of re-arming a timer.
 *
 * Each connection notes the wheel's clock (`now`, refreshed every tick) when it reads bytes. A tick ends the connections
 * whose silence has reached their limit. The clock is up to one tick old when noted, so a connection is ended once
 * `limit + tick` has passed on the clock: never before `limit` of real silence, at most two ticks after it.
 */

/** A connection the watchdog watches. */
export interface Watched {
  /** The wheel's clock when bytes last arrived (or when the limit was set). */
  lastActivity: number;
  /** Silence allowed, ms. */
  silenceLimitMs: number;
  /** The limit has passed: the watchdog has already stopped watching. */
  onSilence(): void;
}

/** How often the watchdog looks, ms. */
export const KEEP_ALIVE_TICK_MS = 250;

class KeepAliveWheel {
  /** The clock connections note, ms (monotonic: performance.now() at the last tick, or when the first connection was watched). */
  now = performance.now();
  private readonly watched = new Set<Watched>();
  private timer: NodeJS.Timeout | undefined;

  /** Starts (or restarts) watching `w` with `silenceLimitMs`, counting from now. */
  watch(w: Watched, silenceLimitMs: number): void {
    if (!this.timer) {
      this.now = performance.now();
      this.timer = setInterval(() => this.tick(), KEEP_ALIVE_TICK_MS);
      this.timer.unref();
    }
    w.silenceLimitMs = silenceLimitMs;
    w.lastActivity = this.now;
    this.watched.add(w);
  }

  unwatch(w: Watched): void {
    this.watched.delete(w);
  }

  /** Connections watched now (tests). */
  get size(): number {
    return this.watched.size;
  }

  private tick(): void {
    const now = (this.now = performance.now());
    for (const w of this.watched) {
      if (now - w.lastActivity < w.silenceLimitMs + KEEP_ALIVE_TICK_MS) continue;
      this.watched.delete(w);
      try {
        w.onSilence();
      } catch {
        /* a connection's close must not stop the sweep of the others */
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
