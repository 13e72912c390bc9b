/** A uPlot time-series chart of one or more keys; drag to zoom, double-click to zoom out. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

const COLORS = ['#0b62c4', '#d9480f', '#2b8a3e', '#7048e8', '#c2255c'];

export interface Series {
  key: string;
  points: [number, number][];
}

/** Aligns the series on one time axis (ms -> s for uPlot); missing values are null gaps. */
function align(series: Series[]): uPlot.AlignedData {
  const times = [...new Set(series.flatMap((s) => s.points.map(([t]) => t)))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const columns = series.map((s) => {
    const column: (number | null)[] = new Array(times.length).fill(null);
    for (const [t, v] of s.points) column[index.get(t)!] = v;
    return column;
  });
  return [times.map((t) => t / 1000), ...columns] as uPlot.AlignedData;
}

export function Chart({ series, from, to, label, bars = false }: { series: Series[]; from: number; to: number; label: string; bars?: boolean }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot>();
  const keys = series.map((s) => s.key).join(',');
  useEffect(() => {
    const el = box.current!;
    const dark = matchMedia('(prefers-color-scheme: dark)').matches;
    const axis = { stroke: dark ? '#9aa4b1' : '#5b6470', grid: { stroke: dark ? '#343b45' : '#e3e6ea' } };
    plot.current = new uPlot(
      {
        width: Math.max(280, el.clientWidth),
        height: 260,
        scales: { x: { time: true, range: (_u, min, max) => (min === max ? [min - 60, max + 60] : [min, max]) } },
        axes: [axis, axis],
        series: [
          {},
          ...series.map((s, i) =>
            bars
              ? { label: s.key, stroke: COLORS[i % COLORS.length], fill: `${COLORS[i % COLORS.length]}99`, width: 1, paths: uPlot.paths.bars!({ size: [0.35, 40], align: i === 0 ? -1 : 1 }), points: { show: false } }
              : { label: s.key, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true, points: { show: s.points.length < 200 } },
          ),
        ],
        cursor: { drag: { x: true, y: false } },
        // The visible range, for tests and scripts reading the page: seconds since the epoch.
        hooks: { setScale: [(u, key) => key === 'x' && (el.dataset.min = String(Math.round(u.scales.x.min ?? 0)), el.dataset.max = String(Math.round(u.scales.x.max ?? 0)))] },
      },
      align(series),
      el,
    );
    const resize = () => plot.current?.setSize({ width: Math.max(280, el.clientWidth), height: 260 });
    addEventListener('resize', resize);
    return () => {
      removeEventListener('resize', resize);
      plot.current?.destroy();
    };
  }, [keys]);
  useEffect(() => {
    plot.current?.setData(align(series), false);
    plot.current?.setScale('x', { min: from / 1000, max: to / 1000 });
  }, [series, from, to]);
  return <div ref={box} class="chart" role="img" aria-label={label} data-points={series.reduce((n, s) => n + s.points.length, 0)} />;
}
