/** Data-out metrics (issue 16): what delivery reports, as Prometheus series on the server's registry. */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ExportObserver } from '../core/export/delivery.ts';

/** Registers the export series on `registry` and returns the observer that feeds them. */
export function exportMetrics(registry: Registry): ExportObserver {
  const labelNames = ['rule'] as const;
  const delivered = new Counter({ name: 'fleetgate_export_delivered_total', help: 'Messages a destination accepted, by rule', labelNames, registers: [registry] });
  const failures = new Counter({ name: 'fleetgate_export_failures_total', help: 'Failed delivery attempts (requests to the destination; a shared request that is split counts once, each lane tried alone after it once more), by rule', labelNames, registers: [registry] });
  const dead = new Counter({ name: 'fleetgate_export_dead_letters_total', help: 'Messages moved to the dead letters, by rule', labelNames, registers: [registry] });
  const skipped = new Counter({ name: 'fleetgate_export_skipped_total', help: 'Messages not exported because the outbox was full, by rule', labelNames, registers: [registry] });
  const rows = new Gauge({ name: 'fleetgate_export_outbox_rows', help: 'Messages waiting in the outbox (all rules, all nodes)', registers: [registry] });
  const bytes = new Gauge({ name: 'fleetgate_export_outbox_bytes', help: 'Estimated size of the outbox, bytes', registers: [registry] });
  const fill = new Gauge({ name: 'fleetgate_export_outbox_fill_ratio', help: 'Outbox size over its disk budget (1 = full: new messages are skipped)', registers: [registry] });
  return {
    delivered: (rule, n) => delivered.inc({ rule }, n),
    failed: (rule) => failures.inc({ rule }),
    deadLettered: (rule, n) => dead.inc({ rule }, n),
    skipped: (rule, n) => skipped.inc({ rule }, n),
    outbox: (r, b, f) => {
      rows.set(r);
      bytes.set(b);
      fill.set(f);
    },
  };
}
