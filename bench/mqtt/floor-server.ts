/**
 * The floor for idle MQTT sessions in Node: a bare `net.createServer` that answers every CONNECT with a fixed CONNACK
 * and then holds the socket. `FLOOR_MODE=bare`: the first chunk is taken with `once('data')` and the socket is then left
 * alone (paused); `FLOOR_MODE=reading`: one shared data handler stays attached (the socket keeps reading, as any
 * server must to notice PINGREQ or DISCONNECT). Prints `{"mqttPort":N}` when listening; answers the memory probe.
 */
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { installMemoryProbe } from '../support/memory-probe.ts';

const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);
const reading = process.env.FLOOR_MODE === 'reading';
const sockets = new Set<Socket>();
function onData(this: Socket): void {
  if (!(this as Socket & { acked?: true }).acked) {
    (this as Socket & { acked?: true }).acked = true;
    this.write(CONNACK);
  }
}
function onClose(this: Socket): void {
  sockets.delete(this);
}
const server = createServer({ noDelay: true }, (socket) => {
  sockets.add(socket);
  socket.on('error', onClose);
  socket.on('close', onClose);
  if (reading) socket.on('data', onData);
  else
    socket.once('data', () => {
      socket.write(CONNACK);
      socket.pause();
    });
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
installMemoryProbe();
process.stdout.write(`${JSON.stringify({ mqttPort: (server.address() as { port: number }).port })}\n`);
process.on('SIGTERM', () => process.exit(0));
