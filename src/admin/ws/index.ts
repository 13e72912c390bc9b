/**
 * ThingsBoard's WebSocket telemetry API on the admin HTTP(S) server: `/api/ws` (first frame `authCmd`, then `cmds`)
 * and the deprecated `/api/ws/plugins/telemetry?token=JWT` (spec §1.1). Uses the `ws` library on the server's
 * `upgrade` event, so it works over HTTP and HTTPS alike.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer } from 'ws';
import type { AdminDeps } from '../context.ts';
import { FramePacer } from './frame-pacer.ts';
import { UserSessionCounts, type WsContext, type WsMetrics } from './context.ts';
import { CLOSE, CLOSE_REASON, WsSession, type WsSessionKind } from './session.ts';
import { queryToken } from './ws-auth.ts';

export type { WsMetrics } from './context.ts';

const PREFIX = '/api/ws';

/** The session type of a path under /api/ws (spec §1.1); null for a path that is not ours. */
function sessionKind(path: string): WsSessionKind | 'UNKNOWN' | null {
  if (path === PREFIX || path === `${PREFIX}/`) return 'GENERAL';
  if (path === `${PREFIX}/plugins/telemetry` || path === `${PREFIX}/plugins/telemetry/`) return 'TELEMETRY';
  return path.startsWith(`${PREFIX}/`) ? 'UNKNOWN' : null;
}

/** Serves the WebSocket API on `app`'s server; open sessions are closed when the app closes. */
export function registerWebSocketApi(app: FastifyInstance, deps: AdminDeps, metrics?: WsMetrics): void {
  const { config } = deps;
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.wsMaxFrameBytes, perMessageDeflate: false });
  const ctx: WsContext = {
    app,
    core: deps.core,
    logger: deps.logger,
    limits: {
      maxSubscriptionsPerSession: config.wsMaxSubscriptionsPerSession,
      maxSessionsPerUser: config.wsMaxSessionsPerUser,
      maxQueuePerSession: Math.max(1, config.wsMaxQueuePerSession), // a queue is always bounded
      authTimeoutMs: config.wsAuthTimeoutMs,
      pingTimeoutMs: config.wsPingTimeoutMs,
      updateIntervalMs: config.wsUpdateIntervalMs,
      maxUpdateFramesPerSecond: config.wsMaxUpdateFramesPerSecond,
    },
    userSessions: new UserSessionCounts(),
    sessions: new Set(),
    metrics,
    pacer: new FramePacer(config.wsUpdateIntervalMs, config.wsMaxUpdateFramesPerSecond),
  };
  metrics?.wsGauges(
    () => ctx.sessions.size,
    () => [...ctx.sessions].reduce((n, s) => n + s.subscriptionCount, 0),
    () => ctx.pacer.intervalMs,
  );
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const kind = sessionKind((req.url ?? '').split('?', 1)[0]);
    if (kind === null) {
      // Not ours: another upgrade listener may take it; alone, answer rather than leave the socket hanging.
      if (app.server.listenerCount('upgrade') === 1) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    socket.on('error', () => socket.destroy());
    wss.handleUpgrade(req, socket, head, (ws) => {
      // TB: the upgrade always succeeds; every refusal is a close frame.
      if (kind === 'UNKNOWN') return ws.close(CLOSE.badData, 'Unknown session type');
      new WsSession(ws, kind, ctx, req.socket.remoteAddress).begin(queryToken(req.url) || undefined);
    });
  };
  app.server.on('upgrade', onUpgrade);
  // The HTTP app's connection drain (src/transports/http/connection-drain.ts) may already have dropped the sockets;
  // whatever is left gets a 1001 close frame and is dropped, so no session holds the server open.
  app.addHook('preClose', (done) => {
    app.server.off('upgrade', onUpgrade);
    for (const session of [...ctx.sessions]) session.close(CLOSE.serverGoingAway, CLOSE_REASON.shutdown);
    for (const client of wss.clients) client.terminate();
    wss.close();
    done();
  });
}
