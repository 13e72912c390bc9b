/**
 * The composition root: builds store, bus and core, starts every transport, and stops them in order.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Throttle } from './core/throttle/index.ts';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.ts';
import { createCore, type CoreInstance } from './core/core.ts';
import { DEFAULT_TENANT_ID } from './core/model.ts';
import { FetchHookCaller } from './hooks/fetch-hook-caller.ts';
import { createLogger, type Logger } from './log.ts';
import { isPostgresUrl, openStore } from './store/open-store.ts';
import type { Store } from './core/ports/store.ts';
import { openBus } from './bus/open-bus.ts';
import type { Bus } from './core/ports/bus.ts';
import { createHttpApp } from './transports/http/app.ts';
import { registerDeviceApi } from './transports/http/device-api.ts';
import { startMqttTransport } from './transports/mqtt/index.ts';
import { startCoapTransport } from './transports/coap/index.ts';
import { registerAdminApi, registerOpenApi } from './admin/index.ts';
import { registerConsole } from './admin/console-static.ts';
import { observeHttpOutcomes, registerMetricsRoute } from './metrics/http.ts';
import { FleetgateMetrics, nodeStatsOf } from './metrics/metrics.ts';
import { Outages } from './core/outages.ts';
import { DependencyUnavailableError } from './core/errors.ts';
import { postgresUnavailable } from './store/unavailable.ts';
import { redisRetryDelay, redisUnavailable } from './bus/redis-unavailable.ts';
import { waitForPart } from './wait-for-part.ts';
import { exportMetrics } from './metrics/export-metrics.ts';
import { openExportSink } from './export/open-sink.ts';

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

/**
 * The database check of /healthz: the database answers a query, and, while commits are failing (a full disk answers
 * reads but refuses writes), one write goes through. DOWN while commits failed in the last 2 s: the devices' own
 * writes are the best probe while they come.
 */
async function probeDatabase(store: Store, outages: Outages): Promise<void> {
  await store.ping();
  const outage = outages.of('database');
  if (!outage) return;
  if (Date.now() - outage.lastFailure < 2000) throw outage.error;
  try {
    await store.probeWrite();
  } catch (err) {
    if (err instanceof DependencyUnavailableError) outages.failed(err);
    throw err;
  }
  outages.recovered('database');
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
    const outages = new Outages(logger, metrics?.coreObserver);
    // issue 18: a connection that breaks is replaced by its pool or by ioredis; it is logged unless the part's outage
    // is already logged, and counted.
    const connectionError = (part: 'database' | 'bus', err: unknown, context: string) => {
      metrics?.connectionError(part);
      if (!outages.of(part)) logger.warn({ event: 'connection_error', part, context, err }, `${part} connection error (${context}); it is replaced when needed`);
    };
    // Only a PostgreSQL server is waited for; a SQLite file that cannot be opened is a configuration error.
    const classifyDatabase = (err: unknown) => (isPostgresUrl(config.database) ? postgresUnavailable(err) : undefined);
    const store = await waitForPart(
      'database',
      () =>
        openStore(config, {
          poolSize: config.pgPoolSize,
          onPoolError: (err) => connectionError('database', err, 'PostgreSQL connection'),
          onSqliteWriterRestart: ({ delayMs, cause, quickDeaths }) =>
            logger.error({ event: 'sqlite_writer_restart', delayMs, cause, quickDeaths }, `SQLite writer thread stopped (${cause}); a new one starts ${delayMs > 0 ? `in ${delayMs} ms` : 'with the next write'}`),
        }),
      classifyDatabase,
      logger,
    );
    opened.push(() => store.close());
    const onBusError = (err: unknown, context: string) => {
      const outage = redisUnavailable(err);
      if (!outage) return logger.warn({ event: 'bus_error', context, err }, `Redis bus error: ${context}`);
      if (context === 'redis connection') metrics?.connectionError('bus');
      outages.failed(outage); // logged once, when the outage begins; it ends when the bus reconnects
    };
    const bus = await waitForPart('bus', () => openBus(config, { onError: onBusError }), redisUnavailable, logger);
    opened.push(() => bus.close());
    bus.onReconnect(() => outages.recovered('bus'));
    const throttleUrl = config.throttleStore && config.throttleStore !== 'memory' ? config.throttleStore : config.bus !== 'memory' ? config.bus : undefined;
    const throttle = new Throttle({
      // ioredis is loaded only when a cluster needs it (start-up of a single node is faster without it).
      counter: throttleUrl
        ? (await import('./core/throttle/redis-counter.ts')).RedisRateCounter.open(throttleUrl, {
            retryStrategy: redisRetryDelay,
            onConnectionError: (err) => connectionError('bus', err, 'Redis throttle counter'),
          })
        : undefined,
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
      onError: (err) => {
        // On the bus's own Redis, its outage is the bus's: logged once, ended when the bus reconnects.
        const outage = throttleUrl === config.bus ? redisUnavailable(err) : undefined;
        if (outage) outages.failed(outage);
        else logger.warn({ err }, 'throttle counter unavailable; failures not counted');
      },
    });
    const core = await createCore({
      store,
      bus,
      logger,
      throttle,
      outages,
      hookCaller: new FetchHookCaller(),
      observer: metrics?.coreObserver,
      openSink: openExportSink,
      exportObserver: metrics ? exportMetrics(metrics.registry) : undefined,
      settings: {
        batchMaxRows: config.batchMaxRows,
        batchMaxDelayMs: config.batchMaxDelayMs,
        batchIntervalMs: config.batchIntervalMs,
        rpcDefaultTimeout: config.rpcDefaultTimeout,
        provisionRetryAfterMs: config.provisionRetryAfterMs,
        deviceInactivityTimeoutMs: config.deviceInactivityTimeoutMs,
        liveInterestTtlMs: config.wsInterestTtlMs,
        otaRolloutGroupSize: config.otaRolloutGroupSize,
        otaRolloutIntervalMs: config.otaRolloutIntervalMs,
        otaMaxPackageBytes: config.otaMaxPackageBytes,
        gateway: { maxSubDevices: config.gatewayMaxSubDevices, maxDevicesPerMessage: config.gatewayMaxDevicesPerMessage, maxNameLength: config.gatewayMaxDeviceNameLength },
        provisionHookConcurrency: config.provisionHookConcurrency,
        credentialsRotationGraceMs: config.credentialsRotationGraceMs,
        export: {
          deadLetterAgeMs: config.exportDeadLetterAgeMs,
          maxOutboxBytes: config.exportMaxOutboxBytes,
          leaseMs: config.exportLeaseMs,
          concurrency: config.exportConcurrency,
          retryBaseMs: config.exportRetryBaseMs,
        },
        caKeyEncryptionKey: config.caKeyEncryptionKey,
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
      socketFront: config.httpSocketFront === 'on',
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
    await registerAdminApi(app, { core, config, logger, jwtSecret, isReady: () => ready, probes: { database: () => probeDatabase(store, outages), bus: () => bus.ping() }, wsMetrics: metrics, ports: () => listening, nodeStats: metrics ? () => nodeStatsOf(metrics) : undefined });
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
