/**
 * The composition root: builds store, bus and core, starts every transport, and stops them in order.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.ts';
import { createCore, type CoreInstance } from './core/core.ts';
import { createLogger, type Logger } from './log.ts';
import { openStore } from './store/open-store.ts';
import type { Store } from './store/store.ts';
import { openBus } from './bus/open-bus.ts';
import type { Bus } from './bus/bus.ts';
import { createHttpApp } from './transports/http/app.ts';
import { registerDeviceApi } from './transports/http/device-api.ts';
import { startMqttTransport } from './transports/mqtt/index.ts';
import { registerAdminApi } from './admin/index.ts';

export interface RunningServer {
  config: Config;
  ports: { http: number; mqtt: number };
  core: CoreInstance;
  store: Store;
  bus: Bus;
  logger: Logger;
  /** Stops accepting, finishes in-flight work, commits pending telemetry, closes the store. Idempotent. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Where to print the generated administrator password (once, never through the logger). */
  announce?: (line: string) => void;
}

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const announce = options.announce ?? ((line: string) => process.stderr.write(`${line}\n`));
  const store = await openStore(config);
  const bus = await openBus(config);
  const core = await createCore({
    store,
    bus,
    logger,
    settings: {
      batchMaxRows: config.batchMaxRows,
      batchMaxDelayMs: config.batchMaxDelayMs,
      rpcDefaultTimeout: config.rpcDefaultTimeout,
      provisionRetryAfterMs: config.provisionRetryAfterMs,
    },
  });
  const admin = await core.users.ensureAdmin(config.adminUsername, config.adminPassword);
  if (admin.generatedPassword) {
    announce(`fleetgate: created administrator ${config.adminUsername} with generated password: ${admin.generatedPassword}`);
    announce('fleetgate: this password is shown only once; change it with `fleetgate admin password`.');
  }
  const jwtSecret = config.jwtSecret ?? (await store.initSetting('jwt_secret', randomBytes(48).toString('base64')));

  let ready = false;
  const app = createHttpApp({ logger, bodyLimit: config.httpMaxPayload });
  registerDeviceApi(app, { core, config, logger });
  await registerAdminApi(app, { core, config, logger, jwtSecret, isReady: () => ready });
  await app.listen({ host: config.host, port: config.httpPort });
  const httpPort = (app.server.address() as AddressInfo).port;
  const mqtt = await startMqttTransport({ core, config, logger, host: config.host, port: config.mqttPort });
  ready = true;
  logger.info({ event: 'listen', host: config.host, http: httpPort, mqtt: mqtt.port, database: config.database.startsWith('postgres') ? 'postgres' : config.database }, 'fleetgate started');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      ready = false;
      logger.info({ event: 'stop' }, 'fleetgate stopping');
      await Promise.allSettled([mqtt.close({ reason: 'shutdown' }), app.close()]);
      await core.close();
      await bus.close();
      await store.close();
      logger.info({ event: 'stopped' }, 'fleetgate stopped');
    })());

  return { config, ports: { http: httpPort, mqtt: mqtt.port }, core, store, bus, logger, close };
}
