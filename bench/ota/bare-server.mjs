// The peer: a bare node:http server serving the same package file in chunks, `GET /chunk?size=&chunk=`, each a
// positioned read of the file (what fleetgate does from its database), and the whole file streamed at `/`.
import { createReadStream, openSync, readSync, statSync } from 'node:fs';
import { createServer } from 'node:http';

const [port, file] = [Number(process.argv[2]), process.argv[3]];
const fd = openSync(file, 'r');
const length = statSync(file).size;
createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': length });
    createReadStream(file).pipe(res);
    return;
  }
  const size = Number(url.searchParams.get('size'));
  const start = size * Number(url.searchParams.get('chunk'));
  const n = Math.max(0, Math.min(size, length - start));
  const body = Buffer.allocUnsafe(n);
  if (n > 0) readSync(fd, body, 0, n, start);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
  res.end(body);
}).listen(port, '127.0.0.1');
