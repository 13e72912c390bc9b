/**
 * The main thread's share of a telemetry group commit on SQLite, in process: foldPoints, the direct path's
 * statements (chunkOps + packChunk, the latest upsert) and the writer thread's codec (encode), for a batch shaped as
 * the MQTT distinct-ts bench's commits (100 devices, `temperature` DOUBLE and `humidity` LONG, distinct ts a message).
 * CPU per message, alternating this checkout with another (`--base /abs/other-checkout`) in one process.
 *
 *   node --import tsx bench/store/commit-ops.ts [--base /tmp/cp-before] [--rounds 4] [--messages 6000] [--batches 400]
 */
import { parseArgs } from 'node:util';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const { values } = parseArgs({
  options: { base: { type: 'string' }, rounds: { type: 'string', default: '4' }, messages: { type: 'string', default: '6000' }, batches: { type: 'string', default: '400' } },
});
const here = path.resolve(import.meta.dirname, '../..');
const trees = [['after', here], ...(values.base ? [['before', path.resolve(values.base)]] : [])] as const;

async function load(root: string) {
  const upsert = await import(pathToFileURL(path.join(root, 'src/store/kysely/sqlite-upsert.ts')).href);
  const codec = await import(pathToFileURL(path.join(root, 'src/store/sqlite-writer-codec.ts')).href);
  return { foldPoints: upsert.foldPoints, directOps: upsert.directOps, OpsEncoder: codec.OpsEncoder };
}

const messages = Number(values.messages);
const devices = Array.from({ length: 100 }, (_, i) => `0000000${i}-aaaa-bbbb-cccc-${String(i).padStart(12, '0')}`);
let clock = 1_700_000_000_000;
function batch(): any[] {
  const points: any[] = [];
  for (let m = 0; m < messages; m++) {
    const deviceId = devices[m % devices.length];
    const ts = clock + Math.floor(m / devices.length);
    points.push({ deviceId, ts, key: 'temperature', value: { type: 'DOUBLE', value: 21.5 + (m % 7) / 10 } });
    points.push({ deviceId, ts, key: 'humidity', value: { type: 'LONG', value: 40 + (m % 5) } });
  }
  clock += messages;
  return points;
}

const loaded = await Promise.all(trees.map(async ([name, root]) => ({ name, ...(await load(root)) })));
const inputs = Array.from({ length: 8 }, batch);
for (let r = 0; r < Number(values.rounds); r++) {
  for (const t of r % 2 === 0 ? loaded : [...loaded].reverse()) {
    const encoder = new t.OpsEncoder();
    let sink = 0;
    const start = process.cpuUsage();
    for (let b = 0; b < Number(values.batches); b++) {
      const { rows, latest } = t.foldPoints(inputs[b % inputs.length]);
      const ops: any[] = [];
      t.directOps(ops, rows, latest, 8);
      const [encoded] = encoder.encode(ops);
      sink += encoded.nums.length;
    }
    const used = process.cpuUsage(start);
    const us = (used.user + used.system) / (messages * Number(values.batches));
    console.log(`round ${r + 1} ${t.name}: ${us.toFixed(3)} µs a message (${sink} parameters encoded)`);
  }
}
