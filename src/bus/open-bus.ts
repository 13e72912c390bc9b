import { ConfigError, type Config } from '../config.ts';
import type { Bus } from './bus.ts';
import { MemoryBus } from './memory-bus.ts';

/** The bus the configuration names: in-memory (default) or Redis (later). */
export async function openBus(config: Pick<Config, 'bus'>): Promise<Bus> {
  if (config.bus !== 'memory') throw new ConfigError('The Redis bus is not available in this version yet; use "memory"');
  return new MemoryBus();
}
