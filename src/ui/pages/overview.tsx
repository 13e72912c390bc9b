/** Overview: devices, connections, provisioning outcomes (chart and by reason), telemetry rate, health. */
import { Fragment } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api.ts';
import { Chart } from '../parts/chart.tsx';
import { ErrorBox } from '../parts/ui.tsx';

interface Outcome {
  status: string;
  reason: string | null;
  count: number;
}

interface Overview {
  time: number;
  devices: { total: number; active: number };
  provisionedLast24h: number;
  provisioning: { lastHour: Outcome[]; lastDay: Outcome[]; hourly: { start: number; success: number; failure: number }[]; truncated: boolean };
  node: { connections: Record<string, number>; sessions: number; telemetryMessages: number; provisioning: Outcome[] } | null;
  health: { database: 'UP' | 'DOWN'; bus: 'UP' | 'DOWN' };
}

const POLL_MS = 2000;

function Outcomes({ title, rows }: { title: string; rows: Outcome[] }) {
  return (
    <div>
      <h3>{title}</h3>
      {rows.length === 0 ? (
        <p class="muted">No provisioning requests.</p>
      ) : (
        <table aria-label={title}>
          <thead>
            <tr>
              <th>Status</th>
              <th>Reason</th>
              <th>Requests</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={`${r.status}-${r.reason}`}>
                <td>
                  <span class={`badge ${r.status === 'SUCCESS' ? 'on' : 'fail'}`}>{r.status}</span>
                </td>
                <td>{r.reason ?? '—'}</td>
                <td class="num">{r.count}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

export function OverviewPage() {
  const [data, setData] = useState<Overview>();
  const [rate, setRate] = useState<number | null>(null);
  const [error, setError] = useState<unknown>();
  const last = useRef<Overview>();
  useEffect(() => {
    let live = true;
    const poll = async () => {
      try {
        const next = await api<Overview>('/api/fleetgate/overview');
        if (!live) return;
        const prev = last.current;
        if (prev?.node && next.node && next.time > prev.time) setRate(Math.max(0, ((next.node.telemetryMessages - prev.node.telemetryMessages) * 1000) / (next.time - prev.time)));
        last.current = next;
        setData(next);
        setError(undefined);
      } catch (err) {
        if (live) setError(err);
      }
    };
    void poll();
    const timer = setInterval(() => document.visibilityState === 'visible' && void poll(), POLL_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, []);
  return (
    <>
      <h1>Overview</h1>
      <ErrorBox error={error} />
      {data && (
        <>
          <div class="grid">
            <section class="panel" aria-label="Devices">
              <h2>Devices</h2>
              <p class="stat" data-stat="devices-total">{data.devices.total}</p>
              <p class="muted">
                <span data-stat="devices-active">{data.devices.active}</span> active now · <span data-stat="provisioned-24h">{data.provisionedLast24h}</span> provisioned in the
                last 24 h
              </p>
            </section>
            <section class="panel" aria-label="Connections">
              <h2>Connections on this node</h2>
              {data.node ? (
                <dl class="facts">
                  {Object.entries(data.node.connections).map(([transport, n]) => (
                    <Fragment key={transport}>
                      <dt>{transport.toUpperCase()}</dt>
                      <dd data-stat={`connections-${transport}`}>{n}</dd>
                    </Fragment>
                  ))}
                  <dt>Device sessions</dt>
                  <dd>{data.node.sessions}</dd>
                </dl>
              ) : (
                <p class="muted">Metrics are off on this node.</p>
              )}
            </section>
            <section class="panel" aria-label="Telemetry">
              <h2>Telemetry</h2>
              <p class="stat" aria-live="polite">
                <span data-stat="telemetry-rate">{rate === null ? '…' : rate.toFixed(1)}</span> msg/s
              </p>
              <p class="muted">messages committed per second on this node, live</p>
            </section>
            <section class="panel" aria-label="Health">
              <h2>Health</h2>
              <dl class="facts">
                <dt>Database</dt>
                <dd>
                  <span class={`badge ${data.health.database === 'UP' ? 'on' : 'fail'}`}>{data.health.database}</span>
                </dd>
                <dt>Bus</dt>
                <dd>
                  <span class={`badge ${data.health.bus === 'UP' ? 'on' : 'fail'}`}>{data.health.bus}</span>
                </dd>
              </dl>
            </section>
          </div>
          <section class="panel" aria-label="Provisioning">
            <h2>Provisioning</h2>
            <Chart
              bars
              label="Provisioning requests per hour, last 24 hours"
              from={data.provisioning.hourly[0].start}
              to={data.provisioning.hourly[23].start + 3_600_000}
              series={[
                { key: 'success', points: data.provisioning.hourly.map((b): [number, number] => [b.start + 1_800_000, b.success]) },
                { key: 'failure', points: data.provisioning.hourly.map((b): [number, number] => [b.start + 1_800_000, b.failure]) },
              ]}
            />
            {data.provisioning.truncated && <p class="muted">More requests than the overview reads; the counts are a lower bound.</p>}
            <div class="grid">
              <Outcomes title="Last hour" rows={data.provisioning.lastHour} />
              <Outcomes title="Last 24 hours" rows={data.provisioning.lastDay} />
              {data.node && <Outcomes title="This node since it started (unknown keys included)" rows={data.node.provisioning} />}
            </div>
          </section>
        </>
      )}
    </>
  );
}
