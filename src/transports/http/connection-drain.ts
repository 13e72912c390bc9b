/**
 * Prompt, graceful stop of the HTTP server. Node's `server.close()` closes connections idle at that moment but waits
 * for a connection that never sent a request (HTTP clients open spare ones) and for a kept-alive connection whose
 * in-flight request ends later, up to the keep-alive timeout. Here, once the app starts closing, connections without
 * a request are closed at once and the others right after their response is written.
 */
import type { Socket } from 'node:net';
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { servedByFront } from './socket-front.ts';

/** The response Node's server is writing on `socket` (its request in flight), if any: node:http's own link. */
const inFlight = (socket: Socket): ServerResponse | undefined => (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;

/** Ends `socket` once node:http's response in flight on it (if any) is written. */
export function endAfterResponse(socket: Socket): void {
  const response = inFlight(socket);
  if (response && !response.writableFinished) response.once('close', () => socket.end());
  else socket.end();
}

/**
 * Installs the drain behaviour on `app` (call before `listen`). Nothing per request: at close, a connection with a
 * response in flight is known by node:http's link from the socket to it (issue 17: a listener per request cost the
 * device API's busiest routes ~0.4 µs each).
 */
export function drainConnectionsOnClose(app: FastifyInstance): void {
  const open = new Set<Socket>();

  app.server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });

  app.addHook('preClose', (done) => {
    for (const socket of open) {
      // The socket front drains the connections it serves itself (socket-front.ts).
      if (servedByFront(socket)) continue;
      if (!inFlight(socket)) socket.destroy();
      else endAfterResponse(socket);
    }
    done();
  });
}
