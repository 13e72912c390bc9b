/** The Bus contract against the in-memory bus (one node: every "node" is the same bus). */
import { MemoryBus } from '../../src/bus/memory-bus.ts';
import { busContract } from './bus-contract.ts';

busContract('in-memory', async () => {
  const bus = new MemoryBus();
  return { node: async () => bus, close: () => bus.close() };
});
