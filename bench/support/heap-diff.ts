/**
 * Groups two V8 heap snapshots by constructor (node type + name) and prints what grew between them, per `per` units
 * (e.g. per session): count and self size, largest first.
 *   node --import tsx bench/support/heap-diff.ts before.heapsnapshot after.heapsnapshot [per] [rows]
 */
import { readFileSync } from 'node:fs';

interface Group {
  count: number;
  size: number;
}

/** Nodes of a heap snapshot file grouped by type and constructor name: count and self size. */
export function groups(path: string): Map<string, Group> {
  const snap = JSON.parse(readFileSync(path, 'utf8'));
  const meta = snap.snapshot.meta;
  const fields: string[] = meta.node_fields;
  const types: string[] = meta.node_types[0];
  const stride = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const nodes: number[] = snap.nodes;
  const strings: string[] = snap.strings;
  const out = new Map<string, Group>();
  for (let i = 0; i < nodes.length; i += stride) {
    const type = types[nodes[i + typeAt]];
    let name = strings[nodes[i + nameAt]];
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '(string)';
    else if (type === 'number') name = '(heap number)';
    else if (type === 'code') name = '(code)';
    else if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = `${type} ${name}`;
    const g = out.get(key) ?? { count: 0, size: 0 };
    g.count++;
    g.size += nodes[i + sizeAt];
    out.set(key, g);
  }
  return out;
}

/** What grew from `before` to `after`, per `per` units, largest first; the total self size growth first. */
export function diffLines(beforePath: string, afterPath: string, per: number, rows = 40): string[] {
  const before = groups(beforePath);
  const after = groups(afterPath);
  const growth = [...after].map(([key, g]) => {
    const b = before.get(key) ?? { count: 0, size: 0 };
    return { key, count: (g.count - b.count) / per, size: (g.size - b.size) / per };
  });
  growth.sort((a, b) => b.size - a.size);
  const total = growth.reduce((sum, r) => sum + r.size, 0);
  return [
    `total self size growth per unit: ${total.toFixed(0)} B`,
    ...growth.slice(0, rows).filter((r) => Math.abs(r.size) >= 1).map((r) => `${r.size.toFixed(0).padStart(7)} B  ${r.count.toFixed(2).padStart(7)} ×  ${r.key}`),
  ];
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const [beforePath, afterPath, perArg, rowsArg] = process.argv.slice(2);
  for (const line of diffLines(beforePath, afterPath, Number(perArg ?? 1), Number(rowsArg ?? 40))) console.log(line);
}
