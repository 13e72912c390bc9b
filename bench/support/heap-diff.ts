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

function groups(path: string): Map<string, Group> {
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

const [beforePath, afterPath, perArg, rowsArg] = process.argv.slice(2);
const per = Number(perArg ?? 1);
const before = groups(beforePath);
const after = groups(afterPath);
const rows = [...after].map(([key, g]) => {
  const b = before.get(key) ?? { count: 0, size: 0 };
  return { key, count: (g.count - b.count) / per, size: (g.size - b.size) / per };
});
rows.sort((a, b) => b.size - a.size);
const total = rows.reduce((sum, r) => sum + r.size, 0);
console.log(`total self size growth per unit: ${total.toFixed(0)} B`);
for (const r of rows.slice(0, Number(rowsArg ?? 40))) console.log(`${r.size.toFixed(0).padStart(7)} B  ${r.count.toFixed(2).padStart(7)} ×  ${r.key}`);
