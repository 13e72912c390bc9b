/**
 * The aedes peer for the MQTT benchmark: an in-memory MQTT broker (npm `aedes`, no persistence) on a random port.
 * Prints `{"mqttPort":N}` on stdout once listening.
 */
import { createServer } from 'node:net';
import { once } from 'node:events';
import { Aedes } from 'aedes';
import { installMemoryProbe } from '../support/memory-probe.ts';

const broker = await Aedes.createBroker();
const server = createServer(broker.handle);
server.listen(0, '127.0.0.1');
await once(server, 'listening');
installMemoryProbe();
process.stdout.write(`${JSON.stringify({ mqttPort: (server.address() as { port: number }).port })}\n`);
process.on('SIGTERM', () => {
  server.close();
  broker.close(() => process.exit(0));
});
