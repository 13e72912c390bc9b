import type { Bus, BusHandler, BusMessage } from '../core/ports/bus.ts';

/**
 * Single-node bus: handlers run on a later microtask, as they would after a network hop. A channel with one handler
 * (every device channel with one session) holds just that function, not a Set: this bus holds one channel per
 * connected device.
 */
export class MemoryBus implements Bus {
  private readonly handlers = new Map<string, BusHandler | BusHandler[]>();

  async publish(channel: string, message: BusMessage): Promise<void> {
    const held = this.handlers.get(channel);
    if (!held) return;
    if (typeof held === 'function') queueMicrotask(() => held(message, channel));
    else for (const handler of [...held]) queueMicrotask(() => handler(message, channel));
  }

  async subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>> {
    const held = this.handlers.get(channel);
    if (!held) this.handlers.set(channel, handler);
    else if (typeof held === 'function') this.handlers.set(channel, [held, handler]);
    else held.push(handler);
    let subscribed = true; // one entry per subscribe, even for the same function; a second unsubscribe does nothing
    return async () => {
      if (!subscribed) return;
      subscribed = false;
      this.remove(channel, handler);
    };
  }

  private remove(channel: string, handler: BusHandler): void {
    const held = this.handlers.get(channel);
    if (held === handler) this.handlers.delete(channel);
    else if (Array.isArray(held)) {
      const at = held.indexOf(handler);
      if (at >= 0) held.splice(at, 1);
      if (held.length === 1) this.handlers.set(channel, held[0]);
    }
  }

  async ping(): Promise<void> {}

  /** An in-process bus never loses its connection. */
  onReconnect(): void {}

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
