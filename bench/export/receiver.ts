/**
 * Bench child: a bare node:http webhook receiver on 127.0.0.1 that counts the telemetry points it is sent.
 * Prints `{"port":..}` when listening; GET /stats answers `{"points","messages","posts"}`.
 */
import { createServer } from 'node:http';

let points = 0;
let messages = 0;
let posts = 0;
const server = createServer((req, res) => {
  if (req.method === 'GET') {
    res.end(JSON.stringify({ points, messages, posts }));
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const batch = JSON.parse(Buffer.concat(chunks).toString()) as { data: { telemetry?: { values: object }[] } }[];
    posts++;
    messages += batch.length;
    for (const m of batch) for (const p of m.data.telemetry ?? []) points += Object.keys(p.values).length;
    res.end();
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`));
process.on('SIGTERM', () => process.exit(0));
