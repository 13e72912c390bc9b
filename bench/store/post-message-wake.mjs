// What a postMessage to a worker costs the sender: to a worker asleep in its event loop (the writer thread between
// group commits) against one that is busy (the message only queues). Issue 17, "HTTP telemetry, session 6".
// Usage: node bench/store/post-message-wake.mjs [messages]
import { Worker } from 'node:worker_threads';

const N = Number(process.argv[2] ?? 2000);
const w = new Worker(
  `const { parentPort } = require('node:worker_threads');
   parentPort.on('message', (m) => { if (m.spin) { const t = Date.now(); while (Date.now() - t < m.spin); } parentPort.postMessage(m.id); });`,
  { eval: true },
);
await new Promise((resolve) => {
  w.once('message', resolve);
  w.postMessage({ id: 0 });
});
let idle = 0;
for (let i = 0; i < N; i++) {
  await new Promise((resolve) => setTimeout(resolve, 1)); // the worker goes back to sleep
  const t = performance.now();
  w.postMessage({ id: i });
  idle += performance.now() - t;
  await new Promise((resolve) => w.once('message', resolve));
}
let busy = 0;
w.postMessage({ id: -1, spin: 50 });
for (let i = 0; i < N; i++) {
  const t = performance.now();
  w.postMessage({ id: i });
  busy += performance.now() - t;
}
console.log(`postMessage, µs of the sender's time: to a sleeping worker ${((idle * 1000) / N).toFixed(1)}, to a busy one ${((busy * 1000) / N).toFixed(1)}`);
await w.terminate();
