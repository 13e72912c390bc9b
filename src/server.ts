/**
 * The composition root: builds store, bus and core, starts every transport, and stops them in order.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Throttle } from './core/throttle/index.ts';
import { RedisRateCounter } from './core/throttle/redis-counter.ts';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.ts';
import { createCore, type CoreInstance } from './core/core.ts';
import { DEFAULT_TENANT_ID } from './core/model.ts';
import { createLogger, type Logger } from './log.ts';
import { isPostgresUrl, openStore } from './store/open-store.ts';
import type { Store } from './store/store.ts';
import { openBus } from './bus/open-bus.ts';
import type { Bus } from './bus/bus.ts';
import { createHttpApp } from './transports/http/app.ts';
import { registerDeviceApi } from './transports/http/device-api.ts';
import { startMqttTransport } from './transports/mqtt/index.ts';
import { startCoapTransport } from './transports/coap/index.ts';
import { registerAdminApi, registerOpenApi } from './admin/index.ts';
import { registerConsole } from './admin/console-static.ts';
import { observeHttpOutcomes, registerMetricsRoute } from './metrics/http.ts';
import { FleetgateMetrics, nodeStatsOf } from './metrics/metrics.ts';

export interface RunningServer {
  config: Config;
  ports: { http: number; mqtt: number; coap: number; mqttTls: number | undefined };
  core: CoreInstance;
  store: Store;
  bus: Bus;
  logger: Logger;
  /** The Prometheus metrics (config `metrics`: on); undefined when off. */
  metrics: FleetgateMetrics | undefined;
  /** Stops accepting, finishes in-flight work, commits pending telemetry, closes the store. Idempotent. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Where to print the generated administrator password (once, never through the logger). */
  announce?: (line: string) => void;
}

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? createLogger(config.logLevel, undefined, config.logFormat);
  const databaseKind = isPostgresUrl(config.database) ? 'postgres' : config.database;
  logger.info({ event: 'start', pid: process.pid, node: process.version, database: databaseKind, bus: config.bus === 'memory' ? 'memory' : 'redis' }, 'fleetgate starting');
  const metrics = config.metrics === 'on' ? new FleetgateMetrics() : undefined;
  const announce = options.announce ?? ((line: string) => process.stderr.write(`${line}\n`));
  // What has been opened so far, newest last: closed in reverse if a later step fails.
  const opened: Array<() => Promise<unknown>> = [];
  try {
    const store = await openStore(config, {
      poolSize: config.pgPoolSize,
      onPoolError: (err) => logger.warn({ event: 'db_pool_error', err }, 'an idle PostgreSQL connection failed; the pool opens a new one when needed'),
    });
    opened.push(() => store.close());
    const bus = await openBus(config, {
      onError: (err, context) => logger.warn({ event: 'bus_error', context, err }, `Redis bus error: ${context}`),
    });
    opened.push(() => bus.close());
    const throttleUrl = config.throttleStore && config.throttleStore !== 'memory' ? config.throttleStore : config.bus !== 'memory' ? config.bus : undefined;
    const throttle = new Throttle({
      counter: throttleUrl ? RedisRateCounter.open(throttleUrl) : undefined,
      limits: {
        provisionFailuresPerSource: config.throttleProvisionFailuresPerSource,
        provisionFailuresPerKey: config.throttleProvisionFailuresPerKey,
        authFailuresPerSource: config.throttleAuthFailuresPerSource,
        deviceMessageRate: config.deviceMessageRate ?? '',
      },
      exempt: config.throttleExemptAddresses.split(',').map((a) => a.trim()).filter(Boolean),
      onBlock: (guard, key, blockedMs) => {
        metrics?.throttleBlocked(guard);
        logger.warn({ event: 'throttle', guard, address: guard === 'provision-key' ? undefined : key, blockedMs }, 'too many failures: throttling');
      },
      onError: (err) => logger.warn({ err }, 'throttle counter unavailable; failures not counted'),
    });
    const core = await createCore({
      store,
      bus,
      logger,
      throttle,
      observer: metrics?.coreObserver,
      settings: {
        batchMaxRows: config.batchMaxRows,
        batchMaxDelayMs: config.batchMaxDelayMs,
        batchIntervalMs: config.batchIntervalMs,
        rpcDefaultTimeout: config.rpcDefaultTimeout,
        provisionRetryAfterMs: config.provisionRetryAfterMs,
        deviceInactivityTimeoutMs: config.deviceInactivityTimeoutMs,
        liveInterestTtlMs: config.wsInterestTtlMs,
      },
    });
    opened.push(() => core.close());
    if (metrics) {
      core.committer.onCommit = metrics.onCommit;
      metrics.countSessionsWith(() => core.sessions.count());
      core.liveUpdates.onPublished = metrics.onLivePublished;
    }
    const admin = await core.users.ensureAdmin(config.adminUsername, config.adminPassword);
    // TB: a fresh tenant has the profile `default` (provisioning DISABLED) marked default.
    await core.profiles.getDefault(DEFAULT_TENANT_ID);
    if (admin.generatedPassword) {
      announce(`fleetgate: created administrator ${config.adminUsername} with generated password: ${admin.generatedPassword}`);
      announce('fleetgate: this password is shown only once; change it with `fleetgate admin password`.');
    }
    const jwtSecret = config.jwtSecret ?? (await store.initSetting('jwt_secret', randomBytes(48).toString('base64')));

    let ready = false;
    const tlsFiles =
      config.tlsCert && config.tlsKey ? { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey), ca: config.tlsCa ? readFileSync(config.tlsCa) : undefined } : undefined;
    const app = createHttpApp({
      logger,
      bodyLimit: config.httpMaxPayload,
      https: tlsFiles,
      limits: {
        headersTimeoutMs: config.httpHeadersTimeoutMs,
        requestTimeoutMs: config.httpRequestTimeoutMs,
        keepAliveTimeoutMs: config.httpKeepAliveTimeoutMs,
        maxConnections: config.httpMaxConnections,
      },
      onRejected: (reason) => metrics?.connectionRejected('http', reason),
    });
    opened.push(() => app.close());
    observeHttpOutcomes(app, metrics, logger);
    if (metrics) {
      registerMetricsRoute(app, metrics, config.metricsToken);
      metrics.connectionCount('http', () => new Promise<number>((resolve) => app.server.getConnections((err, n) => resolve(err ? 0 : n))));
    }
    /** Filled in as the transports start (GET /api/fleetgate/info). */
    const listening: { http?: number; mqtt?: number; coap?: number; mqttTls?: number } = {};
    await registerOpenApi(app);
    registerDeviceApi(app, { core, config, logger });
    await registerAdminApi(app, { core, config, logger, jwtSecret, isReady: () => ready, probes: { database: () => store.ping(), bus: () => bus.ping() }, wsMetrics: metrics, ports: () => listening, nodeStats: metrics ? () => nodeStatsOf(metrics) : undefined });
    await registerConsole(app);
    await app.listen({ host: config.host, port: config.httpPort });
    const httpPort = (app.server.address() as AddressInfo).port;
    const mqtt = await startMqttTransport({
      core,
      config,
      logger,
      host: config.host,
      port: config.mqttPort,
      limits: {
        maxPacketSize: config.mqttMaxPacketSize,
        topicAliasMaximum: config.mqttTopicAliasMaximum,
        connectTimeoutMs: config.mqttConnectTimeoutMs,
        maxInflight: config.mqttMaxInflight,
        maxWriteBuffer: config.mqttMaxWriteBuffer,
        provisionSessionTtlMs: config.mqttProvisionSessionTtlMs,
        clientRpcTimeoutMs: config.clientRpcTimeoutMs,
        maxConnections: config.mqttMaxConnections,
        connectRatePerSource: config.mqttConnectRatePerSource ?? '',
      },
      tls: tlsFiles ? { port: config.mqttTlsPort, ...tlsFiles } : undefined,
      onRejected: (reason) => metrics?.connectionRejected('mqtt', reason),
    });
    opened.push(() => mqtt.close());
    const coap = await startCoapTransport({
      core,
      config,
      logger,
      host: config.host,
      port: config.coapPort,
      options: { maxPayload: config.coapMaxPayload, requestRatePerSource: config.coapRequestRatePerSource ?? '' },
      onRejected: (reason) => metrics?.connectionRejected('coap', reason),
    });
    opened.push(() => coap.close());
    metrics?.connectionCount('mqtt', () => mqtt.sessionCount());
    metrics?.connectionCount('coap', () => coap.observerCount());
    ready = true;
    Object.assign(listening, { http: httpPort, mqtt: mqtt.port, coap: coap.port, mqttTls: mqtt.tlsPort });
    logger.info({ event: 'listen', host: config.host, http: httpPort, mqtt: mqtt.port, mqttTls: mqtt.tlsPort, coap: coap.port, database: databaseKind }, 'fleetgate started');

    let closing: Promise<void> | undefined;
    const close = () =>
      (closing ??= (async () => {
        ready = false;
        logger.info({ event: 'stop' }, 'fleetgate stopping');
        await Promise.allSettled([mqtt.close({ reason: 'shutdown' }), coap.close(), app.close()]);
        await core.close();
        await bus.close();
        await store.close();
        logger.info({ event: 'stopped' }, 'fleetgate stopped');
      })());

    return { config, ports: { http: httpPort, mqtt: mqtt.port, coap: coap.port, mqttTls: mqtt.tlsPort }, core, store, bus, logger, metrics, close };
  } catch (err) {
    for (const closeOne of opened.reverse()) await closeOne().catch(() => {});
    throw err;
  }
}
