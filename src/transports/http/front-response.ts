/**
 * The socket front's answers (socket-front.ts), byte for byte what node:http writes for a lean route's
 * `res.writeHead(status, headers)` + `res.end(body)` (lean-route.ts): the status line with node's reason phrase, the
 * route's headers in its order (`retry-after`, `content-type`, `content-length`), then node's own `Date`, then
 * `Connection: keep-alive` + `Keep-Alive: timeout=<s>` (when a keep-alive timeout is set) or `Connection: close`.
 */
import { STATUS_CODES } from 'node:http';
import type { LeanAnswer } from './lean-route.ts';

let dateValue = '';
let dateUntil = 0;

/** The IMF-fixdate of this second, as node:http's Date header (it too computes it once a second). */
function httpDate(): string {
  const now = Date.now();
  if (now >= dateUntil) {
    dateValue = new Date(now).toUTCString();
    dateUntil = now - (now % 1000) + 1000;
  }
  return dateValue;
}

/** The end of the head after `Date`, as node:http writes it for a response that keeps the connection or closes it. */
export function connectionLines(keepAlive: boolean, keepAliveTimeoutMs: number): string {
  if (!keepAlive) return 'Connection: close\r\n\r\n';
  const timeout = keepAliveTimeoutMs > 0 ? `Keep-Alive: timeout=${Math.floor(keepAliveTimeoutMs / 1000)}\r\n` : '';
  return `Connection: keep-alive\r\n${timeout}\r\n`;
}

const EMPTY_OK_HEAD = 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\nDate: ';

/** The whole response to write for `answer`; `tail` is connectionLines' text for the request. */
export function encodeAnswer(answer: LeanAnswer, tail: string): string {
  if (answer.status === 200 && answer.body === '' && answer.contentType === undefined && answer.retryAfter === undefined) {
    return EMPTY_OK_HEAD + httpDate() + '\r\n' + tail;
  }
  let head = `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'unknown'}\r\n`;
  if (answer.retryAfter !== undefined) head += `retry-after: ${answer.retryAfter}\r\n`;
  if (answer.contentType !== undefined) head += `content-type: ${answer.contentType}\r\n`;
  head += `content-length: ${answer.body === '' ? 0 : Buffer.byteLength(answer.body)}\r\n`;
  return head + 'Date: ' + httpDate() + '\r\n' + tail + answer.body;
}
