import { ConfigError, type Config } from '../config.ts';
import type { Bus } from '../core/ports/bus.ts';
import { MemoryBus } from './memory-bus.ts';
import type { RedisBusOptions } from './redis-bus.ts';

/** True when `bus` names a Redis server (`redis://` or, with TLS, `rediss://`). */
export function isRedisUrl(bus: string): boolean {
  return /^rediss?:\/\//i.test(bus);
}

/** The bus the configuration names: in-memory (default, one node) or Redis (`redis://…`, a cluster). */
export async function openBus(config: Pick<Config, 'bus'>, options: RedisBusOptions = {}): Promise<Bus> {
  if (config.bus === 'memory') return new MemoryBus();
  // ioredis is loaded only when a Redis bus is configured (a single node starts faster without it).
  if (isRedisUrl(config.bus)) return (await import('./redis-bus.ts')).openRedisBus(config.bus, options);
  throw new ConfigError(`bus must be "memory" or a redis:// URL, got ${JSON.stringify(config.bus)}`);
}
