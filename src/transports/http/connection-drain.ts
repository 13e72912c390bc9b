/**
 * Prompt, graceful stop of the HTTP server. Node's `server.close()` closes connections idle at that moment but waits
 * for a connection that never sent a request (HTTP clients open spare ones) and for a kept-alive connection whose
 * in-flight request ends later, up to the keep-alive timeout. Here, once the app starts closing, connections without
 * a request are closed at once and the others right after their response is written.
 */
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** Installs the drain behaviour on `app` (call before `listen`). */
export function drainConnectionsOnClose(app: FastifyInstance): void {
  const open = new Set<Socket>();
  const busy = new Set<Socket>();
  let closing = false;

  app.server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => {
      open.delete(socket);
      busy.delete(socket);
    });
  });

  app.server.on('request', (request, response) => {
    const socket = request.socket as Socket;
    busy.add(socket);
    response.once('close', () => {
      busy.delete(socket);
      if (closing) socket.end();
    });
  });

  app.addHook('preClose', (done) => {
    closing = true;
    for (const socket of open) if (!busy.has(socket)) socket.destroy();
    done();
  });
}
