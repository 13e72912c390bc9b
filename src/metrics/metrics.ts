/**
 * The process's Prometheus metrics, on a registry of its own (never prom-client's global one, so several servers can
 * run in one process, as tests do). Core reports through a CoreObserver, transports through TransportMetrics; this
 * module is the only one that knows prom-client.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ProvisionResult, RequestSource } from '../core/api.ts';
import type { CoreObserver } from '../core/core-types.ts';

/** A transport's name as it appears in the `transport` label. */
export type TransportName = RequestSource['transport'];

/**
 * What a transport may report; server.ts passes this object to each transport. Every method is cheap and never throws.
 */
export interface TransportMetrics {
  /** A device connection or request was refused (bad credentials, rate limit, shutting down...). `reason` is a stable code. */
  connectionRejected(transport: TransportName, reason: string): void;
  /** Registers how to count the transport's open connections; read at each scrape. */
  connectionCount(transport: TransportName, count: () => number | Promise<number>): void;
}

/** Commit latency buckets, seconds: 0.5 ms .. 2.5 s. */
const COMMIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** All of fleetgate's metrics; see the README "Metrics and logs" for the list. */
export class FleetgateMetrics implements TransportMetrics {
  readonly registry = new Registry();
  private readonly connectionCounters = new Map<TransportName, () => number | Promise<number>>();
  private sessionCounter: () => number = () => 0;

  private readonly provisioning = new Counter({
    name: 'fleetgate_provisioning_requests_total',
    help: 'Provisioning requests by transport and outcome (status SUCCESS/NOT_FOUND/FAILURE/ERROR, reason code)',
    labelNames: ['transport', 'status', 'reason'] as const,
    registers: [this.registry],
  });
  /**
   * Telemetry messages and points committed and not yet added to their counters: counted in plain numbers per message
   * (prom-client's inc() makes two objects a call: issue 17, garbage per MQTT message) and added when a counter is read.
   */
  private uncountedMessages = 0;
  private uncountedPoints = 0;
  private readonly telemetryMessages: Counter = new Counter({
    name: 'fleetgate_telemetry_messages_total',
    help: 'Telemetry messages committed',
    registers: [this.registry],
    collect: () => {
      if (this.uncountedMessages > 0) this.telemetryMessages.inc(this.uncountedMessages);
      this.uncountedMessages = 0;
    },
  });
  private readonly telemetryPoints: Counter = new Counter({
    name: 'fleetgate_telemetry_data_points_total',
    help: 'Telemetry data points committed',
    registers: [this.registry],
    collect: () => {
      if (this.uncountedPoints > 0) this.telemetryPoints.inc(this.uncountedPoints);
      this.uncountedPoints = 0;
    },
  });
  private readonly commitSeconds = new Histogram({
    name: 'fleetgate_batch_commit_seconds',
    help: 'Duration of one telemetry/attribute group commit',
    buckets: COMMIT_BUCKETS,
    registers: [this.registry],
  });
  private readonly commitRows = new Counter({ name: 'fleetgate_batch_commit_rows_total', help: 'Rows written by group commits', registers: [this.registry] });
  private readonly rejected = new Counter({
    name: 'fleetgate_rejected_connections_total',
    help: 'Device connections or requests refused, by transport and reason',
    labelNames: ['transport', 'reason'] as const,
    registers: [this.registry],
  });

  private readonly throttleBlocks = new Counter({
    name: 'fleetgate_throttle_blocks_total',
    help: 'Sources or provision keys blocked after too many failures, by guard',
    labelNames: ['guard'] as const,
    registers: [this.registry],
  });

  // OTA (issue 13): device downloads, one count per chunk request (or whole-package download) and the bytes sent.
  private readonly otaChunks = new Counter({ name: 'fleetgate_ota_chunks_served_total', help: 'OTA chunk requests (or whole-package downloads) served to devices', registers: [this.registry] });
  private readonly otaBytes = new Counter({ name: 'fleetgate_ota_bytes_served_total', help: 'OTA package bytes served to devices', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    for (const part of ['database', 'bus']) this.dependencyUp.set({ part }, 1);
    const metrics = this;
    new Gauge({
      name: 'fleetgate_sessions_open',
      help: 'Open device sessions on this node (all transports)',
      registers: [this.registry],
      collect() {
        this.set(metrics.sessionCounter());
      },
    });
    new Gauge({
      name: 'fleetgate_connections_open',
      help: 'Open connections per transport',
      labelNames: ['transport'] as const,
      registers: [this.registry],
      async collect() {
        for (const [transport, count] of metrics.connectionCounters) this.set({ transport }, await count());
      },
    });
  }

  /** The observer to pass to createCore. */
  readonly coreObserver: CoreObserver = {
    provisioned: (transport, result: ProvisionResult | undefined) => {
      if (!result) this.provisioning.inc({ transport, status: 'ERROR', reason: '' });
      else this.provisioning.inc({ transport, status: result.status, reason: result.status === 'SUCCESS' ? '' : result.reason });
    },
    provisionHookCalled: (outcome, seconds) => this.provisionHookCalled(outcome, seconds),
    telemetryCommitted: (points) => {
      this.uncountedMessages++;
      this.uncountedPoints += points;
    },
    dependencyFailed: (part) => this.dependencyFailures.inc({ part }),
    dependencyState: (part, up) => this.dependencyUp.set({ part }, up ? 1 : 0),
    otaServed: (bytes) => {
      this.otaChunks.inc();
      this.otaBytes.inc(bytes);
    },
    busPublishFailed: (kind) => this.busPublishFailures.inc({ kind }),
  };

  /** Feeds the commit histogram (pass to GroupCommitter.onCommit). */
  readonly onCommit = (ms: number, rows: number): void => {
    this.commitSeconds.observe(ms / 1000);
    this.commitRows.inc(rows);
  };

  /** Where the open-sessions gauge reads from (core.sessions.count). */
  countSessionsWith(count: () => number): void {
    this.sessionCounter = count;
  }

  connectionRejected(transport: TransportName, reason: string): void {
    this.rejected.inc({ transport, reason });
  }

  /** A throttle guard blocked a source or key (DESIGN 6). */
  throttleBlocked(guard: string): void {
    this.throttleBlocks.inc({ guard });
  }

  connectionCount(transport: TransportName, count: () => number | Promise<number>): void {
    this.connectionCounters.set(transport, count);
  }

  // ---- outages (issue 18)
  private readonly dependencyUp = new Gauge({
    name: 'fleetgate_dependency_up',
    help: 'Whether a part the server needs works (1) or is down (0), as far as this node has seen: part database or bus',
    labelNames: ['part'] as const,
    registers: [this.registry],
  });
  private readonly dependencyFailures = new Counter({
    name: 'fleetgate_dependency_failures_total',
    help: 'Operations refused because a part was down (commits, provisioning transactions, bus operations), by part',
    labelNames: ['part'] as const,
    registers: [this.registry],
  });
  private readonly connectionErrors = new Counter({
    name: 'fleetgate_dependency_connection_errors_total',
    help: 'Errors emitted by connections to PostgreSQL (part database) or Redis (part bus): the connection is replaced',
    labelNames: ['part'] as const,
    registers: [this.registry],
  });
  private readonly unhandled = new Counter({
    name: 'fleetgate_unhandled_errors_total',
    help: 'Errors that reached the last-resort handler: kind rejection (kept serving), exception (kept serving: a connection error) or fatal (the process ended)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  /** A connection to the database or the bus emitted an error (it is replaced; the process goes on). */
  connectionError(part: 'database' | 'bus'): void {
    this.connectionErrors.inc({ part });
  }

  /** The last-resort handler saw an unhandled rejection or exception. */
  unhandledError(kind: 'rejection' | 'exception' | 'fatal'): void {
    this.unhandled.inc({ kind });
  }

  private readonly wsSent = new Counter({ name: 'fleetgate_ws_messages_sent_total', help: 'WebSocket API frames sent (snapshots, updates, errors)', registers: [this.registry] });
  private readonly wsLatency = new Histogram({
    name: 'fleetgate_ws_update_latency_seconds',
    help: 'WebSocket API live updates: from the commit to the frame handed to the socket',
    buckets: COMMIT_BUCKETS,
    registers: [this.registry],
  });
  private readonly wsCloses = new Counter({ name: 'fleetgate_ws_closed_total', help: 'WebSocket sessions closed by the server, by close code', labelNames: ['code'] as const, registers: [this.registry] });
  private readonly livePublished = new Counter({ name: 'fleetgate_live_updates_published_total', help: 'Live-update bus messages published (one per watched device per commit)', registers: [this.registry] });

  /** Registers the WebSocket session and subscription gauges (WsMetrics). */
  wsGauges(sessions: () => number, subscriptions: () => number, updateIntervalMs?: () => number): void {
    new Gauge({ name: 'fleetgate_ws_sessions_open', help: 'Open WebSocket API sessions on this node', registers: [this.registry], collect() { this.set(sessions()); } });
    new Gauge({ name: 'fleetgate_ws_subscriptions_open', help: 'Live WebSocket subscriptions on this node', registers: [this.registry], collect() { this.set(subscriptions()); } });
    if (updateIntervalMs) {
      new Gauge({ name: 'fleetgate_ws_update_interval_seconds', help: 'Least time between two live update frames of a subscription now (wsUpdateIntervalMs, stretched by wsMaxUpdateFramesPerSecond)', registers: [this.registry], collect() { this.set(updateIntervalMs() / 1000); } });
    }
  }

  wsMessageSent(latencyMs: number | undefined): void {
    this.wsSent.inc();
    if (latencyMs !== undefined) this.wsLatency.observe(Math.max(0, latencyMs) / 1000);
  }

  wsClosed(code: string): void {
    this.wsCloses.inc({ code });
  }

  /** Feeds the live-update counter (pass to LiveUpdates.onPublished). */
  readonly onLivePublished = (messages: number): void => {
    this.livePublished.inc(messages);
  };

  private readonly hookCalls = new Counter({
    name: 'fleetgate_provision_hook_calls_total',
    help: 'Pre-provisioning hook calls by outcome (allowed, denied, unavailable, failedOpen)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly hookSeconds = new Histogram({
    name: 'fleetgate_provision_hook_seconds',
    help: 'Duration of pre-provisioning hook calls (waiting for a free slot included)',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
    registers: [this.registry],
  });

  /** A pre-provisioning hook call ended. */
  provisionHookCalled(outcome: string, seconds: number): void {
    this.hookCalls.inc({ outcome });
    this.hookSeconds.observe(seconds);
  }

  private readonly busPublishFailures = new Counter({
    name: 'fleetgate_bus_publish_failures_total',
    help: 'Change notices (bus message kind) whose publish failed after the change was saved; each is published again when the bus is back',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  /** The Prometheus text exposition. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** This node's figures for the console overview (GET /api/fleetgate/overview). */
export interface NodeStats {
  /** Open connections per transport (as fleetgate_connections_open). */
  connections: Record<string, number>;
  /** Open device sessions (as fleetgate_sessions_open). */
  sessions: number;
  /** Telemetry messages committed since start (as fleetgate_telemetry_messages_total); clients derive a rate. */
  telemetryMessages: number;
  /** Provisioning requests since start by status and reason, all transports (as fleetgate_provisioning_requests_total). */
  provisioning: { status: string; reason: string | null; count: number }[];
}

/** Reads the node's figures from the metrics (open connections are counted at the moment of the call). */
export async function nodeStatsOf(metrics: FleetgateMetrics): Promise<NodeStats> {
  const read = async (name: string) => (await metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
  const connections: Record<string, number> = {};
  for (const value of await read('fleetgate_connections_open')) connections[String(value.labels.transport)] = value.value;
  const [sessions] = await read('fleetgate_sessions_open');
  const [messages] = await read('fleetgate_telemetry_messages_total');
  const provisioning = new Map<string, { status: string; reason: string | null; count: number }>();
  for (const value of await read('fleetgate_provisioning_requests_total')) {
    const status = String(value.labels.status);
    const reason = value.labels.reason ? String(value.labels.reason) : null;
    const row = provisioning.get(`${status}|${reason}`) ?? { status, reason, count: 0 };
    row.count += value.value;
    provisioning.set(`${status}|${reason}`, row);
  }
  return {
    connections,
    sessions: sessions?.value ?? 0,
    telemetryMessages: messages?.value ?? 0,
    provisioning: [...provisioning.values()].sort((a, b) => b.count - a.count),
  };
}
