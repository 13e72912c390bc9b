/** Latest telemetry, live over the WebSocket API, and a chart of chosen keys over the last hour, day or a range. */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, query } from '../api.ts';
import { Chart, type Series } from '../parts/chart.tsx';
import { ErrorBox, Field, formatTime } from '../parts/ui.tsx';
import { subscribe } from '../ws.ts';

type Latest = Record<string, { ts: number; value: string | null }>;
type Range = 'hour' | 'day' | 'custom';

const HOUR = 3_600_000;

type Points = [number, number][];

/** Points of both lists, one per timestamp (the later list wins a tie), in time order. */
function mergePoints(older: Points, newer: Points): Points {
  const byTs = new Map<number, number>();
  for (const [ts, value] of older) byTs.set(ts, value);
  for (const [ts, value] of newer) byTs.set(ts, value);
  return [...byTs].sort((a, b) => a[0] - b[0]);
}

function numericPoints(points: [number, string | null][]): Points {
  return points.filter(([, v]) => v !== null && v !== '' && !Number.isNaN(Number(v))).map(([t, v]): [number, number] => [t, Number(v)]);
}

function toLocalInput(ms: number): string {
  const d = new Date(ms - new Date().getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

export function TelemetryPanel({ deviceId }: { deviceId: string }) {
  const [latest, setLatest] = useState<Latest>({});
  const [live, setLive] = useState<'live' | 'reconnecting'>('reconnecting');
  const [chosen, setChosen] = useState<string[]>([]);
  const [range, setRange] = useState<Range>('hour');
  const [custom, setCustom] = useState(() => [toLocalInput(Date.now() - HOUR), toLocalInput(Date.now())]);
  const [history, setHistory] = useState<Record<string, Points>>({});
  // Live points that arrive while a history read is in flight: the read may have run before they were committed,
  // so they are merged into its answer instead of being overwritten by it.
  const liveDuringRead = useRef<Record<string, Points> | undefined>(undefined);
  const readGeneration = useRef(0);
  const [reading, setReading] = useState(false);
  const [error, setError] = useState<unknown>();
  const [now, setNow] = useState(Date.now());

  // TB: TIMESERIES without keys, scope LATEST_TELEMETRY: the first frame holds all latest values, then every change.
  useEffect(
    () =>
      subscribe(
        { type: 'TIMESERIES', entityType: 'DEVICE', entityId: deviceId, scope: 'LATEST_TELEMETRY' },
        (data) => {
          setLatest((old) => {
            const next = { ...old };
            for (const [key, points] of Object.entries(data)) for (const [ts, value] of points) if (!next[key] || ts >= next[key].ts) next[key] = { ts, value };
            return next;
          });
          const pending = liveDuringRead.current;
          if (pending) for (const [key, points] of Object.entries(data)) pending[key] = mergePoints(pending[key] ?? [], numericPoints(points));
          setHistory((old) => {
            const next = { ...old };
            for (const [key, points] of Object.entries(data)) if (next[key]) next[key] = mergePoints(next[key], numericPoints(points));
            return next;
          });
          setNow(Date.now());
        },
        setLive,
      ),
    [deviceId],
  );

  const keys = Object.keys(latest).sort();
  useEffect(() => {
    if (chosen.length === 0 && keys.length > 0) setChosen([keys.find((k) => !Number.isNaN(Number(latest[k].value))) ?? keys[0]]);
  }, [keys.join(',')]);

  const [from, to] = useMemo(() => {
    if (range === 'custom') return [new Date(custom[0]).getTime(), new Date(custom[1]).getTime()];
    return [now - (range === 'hour' ? HOUR : 24 * HOUR), now];
  }, [range, custom, now]);

  useEffect(() => {
    if (chosen.length === 0 || !(from < to)) return;
    const generation = ++readGeneration.current;
    liveDuringRead.current = {};
    setReading(true);
    api<Record<string, { ts: number; value: string }[]>>(
      `/api/plugins/telemetry/DEVICE/${deviceId}/values/timeseries${query({ keys: chosen.join(','), startTs: from, endTs: range === 'custom' ? to : to + HOUR, limit: 10000, orderBy: 'ASC' })}`,
    ).then(
      (data) => {
        if (generation !== readGeneration.current) return;
        const next: Record<string, Points> = {};
        for (const key of chosen) {
          const read = numericPoints((data[key] ?? []).map((p): [number, string] => [p.ts, p.value]));
          const live = (liveDuringRead.current?.[key] ?? []).filter(([ts]) => ts >= from && (range !== 'custom' || ts <= to));
          next[key] = mergePoints(read, live);
        }
        liveDuringRead.current = undefined;
        setReading(false);
        setHistory(next);
        setError(undefined);
      },
      (e: unknown) => {
        if (generation !== readGeneration.current) return;
        liveDuringRead.current = undefined;
        setReading(false);
        setError(e);
      },
    );
  }, [deviceId, chosen.join(','), range, custom[0], custom[1]]);

  const series: Series[] = chosen.map((key) => ({ key, points: history[key] ?? [] }));
  return (
    <section class="panel" aria-label="Telemetry" aria-busy={reading ? 'true' : 'false'}>
      <h2>
        Telemetry <span class={`badge ${live === 'live' ? 'on' : 'off'}`}>{live === 'live' ? 'live' : 'connecting…'}</span>
      </h2>
      {keys.length === 0 ? (
        <p class="muted">No telemetry yet.</p>
      ) : (
        <div class="table-wrap">
          <table aria-label="Latest telemetry">
            <thead>
              <tr>
                <th>Chart</th>
                <th>Key</th>
                <th>Value</th>
                <th>Time</th>
              </tr>
            </thead>
            <tbody>
              {keys.map((key) => (
                <tr key={key}>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`Chart ${key}`}
                      checked={chosen.includes(key)}
                      onChange={(e) => setChosen(e.currentTarget.checked ? [...chosen, key] : chosen.filter((k) => k !== key))}
                    />
                  </td>
                  <td>{key}</td>
                  <td data-key={key}>{latest[key].value ?? '—'}</td>
                  <td>{formatTime(latest[key].ts)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <div class="tabs" role="group" aria-label="Chart range">
        {(['hour', 'day', 'custom'] as Range[]).map((r) => (
          <button type="button" key={r} aria-pressed={range === r} aria-selected={range === r} onClick={() => (setRange(r), setNow(Date.now()))}>
            {r === 'hour' ? 'Last hour' : r === 'day' ? 'Last day' : 'Range'}
          </button>
        ))}
      </div>
      {range === 'custom' && (
        <div class="row">
          <Field label="From" type="datetime-local" value={custom[0]} onInput={(e) => setCustom([e.currentTarget.value, custom[1]])} />
          <Field label="To" type="datetime-local" value={custom[1]} onInput={(e) => setCustom([custom[0], e.currentTarget.value])} />
        </div>
      )}
      <ErrorBox error={error} />
      {chosen.length > 0 && <Chart series={series} from={from} to={to} label={`Chart of ${chosen.join(', ')}`} />}
      <p class="muted">Drag across the chart to zoom in; double-click to zoom out.</p>
    </section>
  );
}
