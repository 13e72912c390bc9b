import type { Bus, BusHandler, BusMessage } from './bus.ts';

/** Single-node bus: handlers run on a later microtask, as they would after a network hop. */
export class MemoryBus implements Bus {
  private readonly handlers = new Map<string, Set<BusHandler>>();

  async publish(channel: string, message: BusMessage): Promise<void> {
    const set = this.handlers.get(channel);
    if (!set) return;
    for (const handler of [...set]) queueMicrotask(() => handler(message));
  }

  async subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>> {
    let set = this.handlers.get(channel);
    if (!set) this.handlers.set(channel, (set = new Set()));
    const entry: BusHandler = (m) => handler(m); // one entry per subscribe, even for the same function
    set.add(entry);
    return async () => {
      const current = this.handlers.get(channel);
      if (!current) return;
      current.delete(entry);
      if (current.size === 0) this.handlers.delete(channel);
    };
  }

  async ping(): Promise<void> {}

  /** An in-process bus never loses its connection. */
  onReconnect(): void {}

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
