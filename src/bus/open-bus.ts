import { ConfigError, type Config } from '../config.ts';
import type { Bus } from './bus.ts';
import { MemoryBus } from './memory-bus.ts';
import { openRedisBus, type RedisBusOptions } from './redis-bus.ts';

/** True when `bus` names a Redis server (`redis://` or, with TLS, `rediss://`). */
export function isRedisUrl(bus: string): boolean {
  return /^rediss?:\/\//i.test(bus);
}

/** The bus the configuration names: in-memory (default, one node) or Redis (`redis://…`, a cluster). */
export async function openBus(config: Pick<Config, 'bus'>, options: RedisBusOptions = {}): Promise<Bus> {
  if (config.bus === 'memory') return new MemoryBus();
  if (isRedisUrl(config.bus)) return openRedisBus(config.bus, options);
  throw new ConfigError(`bus must be "memory" or a redis:// URL, got ${JSON.stringify(config.bus)}`);
}
