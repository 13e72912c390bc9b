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
  private readonly telemetryMessages = new Counter({ name: 'fleetgate_telemetry_messages_total', help: 'Telemetry messages committed', registers: [this.registry] });
  private readonly telemetryPoints = new Counter({ name: 'fleetgate_telemetry_data_points_total', help: 'Telemetry data points committed', registers: [this.registry] });
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
    telemetryCommitted: (points) => {
      this.telemetryMessages.inc();
      this.telemetryPoints.inc(points);
    },
    otaServed: (bytes) => {
      this.otaChunks.inc();
      this.otaBytes.inc(bytes);
    },
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

  /** The Prometheus text exposition. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
