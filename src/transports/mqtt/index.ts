/**
 * The MQTT device endpoint (issue 3): a TCP listener whose connections are MqttConnection state machines
 * over core. Not a broker: devices publish to fixed topics and subscribe only to what the server sends.
 */
import net from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import type { Config } from '../../config.ts';
import type { Core, CoreLogger } from '../../core/core-types.ts';
import { MqttConnection, type TransportContext } from './connection.ts';
import { DEFAULT_MQTT_LIMITS, type MqttLimits } from './limits.ts';
import { RC } from './reason-codes.ts';
import { MemoryRateCounter } from '../../core/throttle/counter.ts';
import { parseRateLimit } from '../../core/throttle/limits.ts';
import { clientCertificate, provisionByChain, tlsServerOptions, type MqttTlsOptions } from './tls.ts';

export type { MqttTlsOptions } from './tls.ts';

export { DEFAULT_MQTT_LIMITS, type MqttLimits } from './limits.ts';
export { MqttConnection, type TransportContext } from './connection.ts';

/** What server.ts passes in. */
export interface MqttTransportDeps {
  core: Core;
  config: Config;
  logger: CoreLogger;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Overrides of the transport's limits (tests, and later config keys). */
  limits?: Partial<MqttLimits>;
  /** When set, also listens for MQTT over TLS (spec §10: 8883) with X.509 client-certificate auth (spec §8.1). */
  tls?: MqttTlsOptions;
  /** Told when an admission limit refuses a connection (`MAX_CONNECTIONS`, `CONNECT_RATE`), for metrics. */
  onRejected?: (reason: string) => void;
}

/** A running MQTT transport. */
export interface MqttTransport {
  /** The bound port. */
  port: number;
  /** The bound TLS port, when TLS is configured. */
  tlsPort: number | undefined;
  /** Stops accepting, disconnects every client (v5: DISCONNECT 0x8B on shutdown) and waits for the sockets. */
  close(opts?: { reason?: 'shutdown' }): Promise<void>;
  /** Open MQTT connections (device and provision sessions, and those still connecting). */
  sessionCount(): number;
}

/** Starts listening for MQTT 3.1, 3.1.1 and 5 clients. */
export async function startMqttTransport(deps: MqttTransportDeps): Promise<MqttTransport> {
  const ctx: TransportContext = { core: deps.core, logger: deps.logger, limits: { ...DEFAULT_MQTT_LIMITS, ...deps.limits }, onLimit: deps.onRejected };
  const connections = new Set<MqttConnection>();
  let closing = false;
  const connectRules = parseRateLimit(ctx.limits.connectRatePerSource);
  const connectCounter = new MemoryRateCounter();
  /** Admission limits (issue 7 §2): undefined when the connection may proceed. */
  const admission = (address: string | undefined): MqttConnection['refusal'] => {
    if (ctx.limits.maxConnections > 0 && connections.size >= ctx.limits.maxConnections) return 'max-connections';
    const now = Date.now();
    if (address && connectRules.some((rule) => connectCounter.hitSync(address, rule.windowMs, now) > rule.capacity)) return 'connect-rate';
    return undefined;
  };

  /** conn.onClose of every connection (one function, called with the connection as `this`). */
  function forget(this: MqttConnection): void {
    connections.delete(this);
  }
  const accept = (socket: net.Socket, tlsSocket?: TLSSocket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    socket.setKeepAlive(true, 60_000); // half-open sockets of clients with keepalive 0
    const refusal = admission(socket.remoteAddress);
    const conn = new MqttConnection(socket, ctx, socket.remoteAddress);
    if (tlsSocket) {
      try {
        const certificate = clientCertificate(tlsSocket);
        // spec §7: chain provisioning right after the handshake (not for a connection an admission limit refuses).
        if (certificate.kind === 'valid' && !refusal) certificate.provisioned = provisionByChain(ctx, certificate, socket.remoteAddress, () => conn.destroy());
        conn.clientCertificate = certificate;
      } catch (err) {
        deps.logger.warn({ err, address: socket.remoteAddress }, 'mqtt: unreadable client certificate, connection closed');
        conn.destroy(); // bad input costs its connection, never the process
      }
    }
    if (refusal) {
      conn.refusal = refusal;
      deps.onRejected?.(refusal === 'max-connections' ? 'MAX_CONNECTIONS' : 'CONNECT_RATE');
    }
    if (conn.closed) return; // destroyed above: never counted
    connections.add(conn);
    conn.onClose = forget;
  };
  const server = net.createServer({ noDelay: true }, (socket) => accept(socket));
  server.on('error', (err) => deps.logger.error({ err }, 'mqtt: listener error'));
  const port = await listen(server, deps.port, deps.host);
  deps.logger.info({ host: deps.host, port }, 'mqtt: listening');
  let tlsServer: tls.Server | undefined;
  let tlsPort: number | undefined;
  if (deps.tls) {
    tlsServer = tls.createServer({ ...tlsServerOptions(deps.tls), noDelay: true }, (socket) => accept(socket, socket));
    tlsServer.on('error', (err) => deps.logger.error({ err }, 'mqtt: tls listener error'));
    tlsServer.on('tlsClientError', (err) => deps.logger.debug({ err: err.message }, 'mqtt: tls handshake failed'));
    tlsPort = await listen(tlsServer, deps.tls.port, deps.host);
    deps.logger.info({ host: deps.host, port: tlsPort }, 'mqtt: listening (TLS)');
  }

  return {
    port,
    tlsPort,
    sessionCount: () => connections.size,
    async close(opts) {
      closing = true;
      const closedTls = tlsServer ? new Promise<void>((resolve) => tlsServer.close(() => resolve())) : Promise.resolve();
      const closed = Promise.all([new Promise<void>((resolve) => server.close(() => resolve())), closedTls]);
      for (const conn of [...connections]) {
        conn.end(opts?.reason === 'shutdown' ? RC.SERVER_SHUTTING_DOWN : undefined);
      }
      await closed;
    },
  };
}

/** Listens on `port` (0 = any) and resolves to the bound port. */
function listen(server: net.Server, port: number, host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}
