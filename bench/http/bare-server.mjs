// The peer: a bare node:http server answering every request with a fixed provisioning-sized JSON body.
import { createServer } from 'node:http';

const body = JSON.stringify({ credentialsValue: 'Xo1yf4GZq7Lr2b8sKd0A', credentialsType: 'ACCESS_TOKEN', status: 'SUCCESS' });
const port = Number(process.argv[2]);
createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}).listen(port, '127.0.0.1');
