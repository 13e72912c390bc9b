/**
 * The MQTT device endpoint (issue 3): a TCP listener whose connections are MqttConnection state machines
 * over core. Not a broker: devices publish to fixed topics and subscribe only to what the server sends.
 */
import net from 'node:net';
import type { Config } from '../../config.ts';
import type { Core, CoreLogger } from '../../core/core-types.ts';
import { MqttConnection, type TransportContext } from './connection.ts';
import { DEFAULT_MQTT_LIMITS, type MqttLimits } from './limits.ts';
import { RC } from './reason-codes.ts';

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
}

/** A running MQTT transport. */
export interface MqttTransport {
  /** The bound port. */
  port: number;
  /** Stops accepting, disconnects every client (v5: DISCONNECT 0x8B on shutdown) and waits for the sockets. */
  close(opts?: { reason?: 'shutdown' }): Promise<void>;
  /** Open MQTT connections (device and provision sessions, and those still connecting). */
  sessionCount(): number;
}

/** Starts listening for MQTT 3.1, 3.1.1 and 5 clients. */
export async function startMqttTransport(deps: MqttTransportDeps): Promise<MqttTransport> {
  const ctx: TransportContext = { core: deps.core, logger: deps.logger, limits: { ...DEFAULT_MQTT_LIMITS, ...deps.limits } };
  const connections = new Set<MqttConnection>();
  let closing = false;

  const server = net.createServer({ noDelay: true }, (socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    socket.setKeepAlive(true, 60_000); // half-open sockets of clients with keepalive 0
    const conn = new MqttConnection(socket, ctx, socket.remoteAddress);
    connections.add(conn);
    conn.onClose = () => connections.delete(conn);
    socket.once('close', () => connections.delete(conn));
  });
  server.on('error', (err) => deps.logger.error({ err }, 'mqtt: listener error'));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port, deps.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  deps.logger.info({ host: deps.host, port }, 'mqtt: listening');

  return {
    port,
    sessionCount: () => connections.size,
    async close(opts) {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const conn of [...connections]) {
        conn.end(opts?.reason === 'shutdown' ? RC.SERVER_SHUTTING_DOWN : undefined);
      }
      await closed;
    },
  };
}
