/**
 * Bench child: a bare node:http webhook receiver on 127.0.0.1 that counts the telemetry points it is sent.
 * Prints `{"port":..}` when listening; GET /stats answers `{"points","messages","posts"}`.
 *
 * RECEIVER_MODE=parse (the default) JSON.parses every body and counts the keys of every entry's `values`, as a real
 * receiver would read it. RECEIVER_MODE=scan counts without parsing: messages by the `{"id":` that opens each one,
 * points by the colons inside each `"values":{...}` object. That count is exact only for values without strings (a
 * string value may hold a colon or a brace), which holds for bench/export/run.ts's load (numbers only); it stands for
 * a receiver on another machine, whose CPU would not compete with the server under measure on the same two cores.
 */
import { createServer } from 'node:http';

const scan = process.env.RECEIVER_MODE === 'scan';
let points = 0;
let messages = 0;
let posts = 0;

/**
 * Counts messages and points of a body without parsing it (numbers-only values: see the header), in one pass over
 * its bytes: a message opens with `{"id"`, a `values` object with `s":{`, and inside one every colon is a key.
 */
function scanBody(body: Buffer): void {
  let inValues = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inValues) {
      if (c === 0x3a) points++;
      else if (c === 0x7d) inValues = false;
    } else if (c === 0x7b) {
      if (body[i - 1] === 0x3a && body[i - 2] === 0x22 && body[i - 3] === 0x73 && body[i - 4] === 0x65 && body[i - 9] === 0x22) inValues = true; // "values":{
      else if (body[i + 1] === 0x22 && body[i + 2] === 0x69 && body[i + 3] === 0x64 && body[i + 4] === 0x22) messages++; // {"id"
    }
  }
}

function parseBody(body: Buffer): void {
  const batch = JSON.parse(body.toString()) as { data: { telemetry?: { values: object }[] } }[];
  messages += batch.length;
  for (const m of batch) for (const p of m.data.telemetry ?? []) points += Object.keys(p.values).length;
}

/** The first bodies in scan mode are counted both ways: a scan that disagrees with the parse stops the receiver. */
let checked = 0;
function checkedScan(body: Buffer): void {
  if (checked >= 5) return scanBody(body);
  checked++;
  const before = { points, messages };
  parseBody(body);
  const parsed = { points: points - before.points, messages: messages - before.messages };
  points = before.points;
  messages = before.messages;
  scanBody(body);
  if (points - before.points !== parsed.points || messages - before.messages !== parsed.messages) {
    process.stderr.write(`receiver: the scan counted ${points - before.points} points, the parse ${parsed.points}\n`);
    process.exit(1);
  }
}

const server = createServer((req, res) => {
  if (req.method === 'GET') {
    res.end(JSON.stringify({ points, messages, posts }));
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    posts++;
    if (scan) checkedScan(body);
    else parseBody(body);
    res.end();
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port, mode: scan ? 'scan' : 'parse' })}\n`));
process.on('SIGTERM', () => process.exit(0));
