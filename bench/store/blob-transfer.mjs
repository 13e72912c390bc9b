// What a blob parameter costs to cross to the SQLite writer thread (issue 17, ts_kv_chunk rows carry one each):
// a structured clone (v8.serialize on the sending side, v8.deserialize on the thread, as postMessage does) against
// copying a message's blobs into one buffer (transferred, not cloned) and a Buffer view of each on the thread
// (src/store/sqlite-writer-codec.ts). CPU per blob, 50 blobs a message, of 128 and 1024 bytes (8 and 64 points).
//   node bench/store/blob-transfer.mjs
import v8 from 'node:v8';
for (const size of [128, 1024]) {
  const n = 50;
  const arrays = Array.from({ length: n }, () => new Uint8Array(size).fill(7));
  const reps = 20000;
  let t0 = process.cpuUsage();
  for (let i = 0; i < reps; i++) v8.serialize(arrays);
  let ser = process.cpuUsage(t0);
  const bytes = v8.serialize(arrays);
  t0 = process.cpuUsage();
  for (let i = 0; i < reps; i++) v8.deserialize(bytes);
  let de = process.cpuUsage(t0);
  t0 = process.cpuUsage();
  for (let i = 0; i < reps; i++) { const all = new Uint8Array(n * size); let at = 0; for (const a of arrays) { all.set(a, at); at += a.length; } }
  let copy = process.cpuUsage(t0);
  t0 = process.cpuUsage();
  const all = new Uint8Array(n * size);
  for (let i = 0; i < reps; i++) { let at = 0; const out = new Array(n); for (let j = 0; j < n; j++) { out[j] = Buffer.from(all.buffer, at, size); at += size; } }
  let views = process.cpuUsage(t0);
  const per = (u) => ((u.user + u.system) / reps / n * 1000).toFixed(0);
  console.log(`${size} B: serialize ${per(ser)} ns/chunk, deserialize ${per(de)} ns/chunk, copy into one ${per(copy)} ns/chunk, views ${per(views)} ns/chunk`);
}
