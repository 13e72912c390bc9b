/**
 * The webhook export sink: one POST per batch with a JSON array body. With a secret, `X-Fleetgate-Signature` carries
 * `sha256=` + hex HMAC-SHA256(secret, timestamp + "." + body) and `X-Fleetgate-Timestamp` the timestamp (ms), so a
 * receiver can refuse replays of old deliveries. 2xx is success; 429 and 503 with Retry-After set the next attempt.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { SinkError, type ExportSink } from '../core/ports/export-sink.ts';
import type { ExportMessage, WebhookDestination } from '../core/export/model.ts';
import { BodyWriter } from '../core/export/compact-body.ts';

/** The signature header value for a body sent at `timestamp` (receivers compute the same and compare). */
export function webhookSignature(secret: string, timestamp: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`;
}

/**
 * The POST body, `[json,json,…]` as UTF-8, written message by message into one buffer: a message of a compact row
 * writes its bytes straight from the row (compact-body.ts), any other its text. A join of the texts and its encoding
 * cost over twice as much CPU per message (bench/RESULTS.md, "Data out, session 6"; "render in one pass, session 7").
 */
export function webhookBody(messages: readonly ExportMessage[]): Buffer {
  let size = 2;
  for (const m of messages) size += (m.writeTo ? m.likelyBytes! : m.json.length + (m.json.length >> 3) + 16) + 1;
  // A body buffer sized near what it will hold: a large over-sized one (external memory) brings garbage collections on.
  const w = new BodyWriter(size);
  w.buf[w.at++] = 0x5b; // [
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (i > 0) {
      w.ensure(1);
      w.buf[w.at++] = 0x2c; // ,
    }
    if (m.writeTo) m.writeTo(w);
    else w.text(m.json);
  }
  w.ensure(1);
  w.buf[w.at++] = 0x5d; // ]
  return w.bytes();
}

/** Retry-After as ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** What a POST answered: its status, Retry-After, and the first bytes of its body. */
interface Answer {
  status: number;
  retryAfter: string | null;
  text: string;
}

/**
 * One keep-alive connection pool per destination over node:http(s): a POST costs the bench's server a third of what
 * fetch() cost it (bench/RESULTS.md, "Data out"), and delivery sends one per lane and batch.
 */
export class WebhookSink implements ExportSink {
  private readonly url: URL;
  private readonly agent: http.Agent;

  constructor(private readonly destination: WebhookDestination) {
    this.url = new URL(destination.url);
    const options = { keepAlive: true, maxSockets: 8, maxFreeSockets: 8 };
    this.agent = this.url.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
  }

  async deliver(messages: ExportMessage[]): Promise<void> {
    const payload = webhookBody(messages);
    const headers: Record<string, string | number> = { ...this.destination.headers, 'content-type': 'application/json', 'user-agent': 'fleetgate-export' };
    if (this.destination.secret) {
      const timestamp = String(Date.now());
      headers['x-fleetgate-timestamp'] = timestamp;
      headers['x-fleetgate-signature'] = webhookSignature(this.destination.secret, timestamp, payload);
    }
    headers['content-length'] = payload.length;
    let answer: Answer;
    try {
      answer = await this.post(payload, headers);
    } catch (err) {
      const e = err as Error & { code?: string };
      const why = e.name === 'TimeoutError' ? `no answer within ${this.destination.timeoutMs} ms` : (e.code ?? e.message);
      throw new SinkError(`POST ${redact(this.destination.url)} failed: ${why}`);
    }
    if (answer.status >= 200 && answer.status < 300) return;
    const retry = answer.status === 429 || answer.status === 503 ? retryAfterMs(answer.retryAfter) : undefined;
    throw new SinkError(`POST ${redact(this.destination.url)} answered ${answer.status}${answer.text ? `: ${answer.text.slice(0, 200)}` : ''}`, retry);
  }

  /** Sends the POST (redirects are not followed: a 3xx is an answer like any other) within the destination's timeout. */
  private post(payload: Buffer, headers: Record<string, string | number>): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      let timedOut: Error | undefined;
      const fail = (err: Error) => reject(timedOut ?? err);
      const send = this.url.protocol === 'https:' ? https.request : http.request;
      const req = send(this.url, { method: 'POST', headers, agent: this.agent }, (res) => {
        headOf(res, BODY_LIMIT).then((text) => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, retryAfter: headerText(res.headers['retry-after']), text });
        }, fail);
      });
      const timer = setTimeout(() => {
        timedOut = Object.assign(new Error('timeout'), { name: 'TimeoutError' });
        req.destroy(timedOut);
      }, this.destination.timeoutMs);
      req.once('error', (err) => {
        clearTimeout(timer);
        fail(err);
      });
      req.end(payload);
    });
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }
}

const BODY_LIMIT = 4096;

function headerText(value: string | string[] | undefined): string | null {
  return value === undefined ? null : Array.isArray(value) ? (value[0] ?? null) : value;
}

/**
 * The first `limit` bytes of a response body as text. A body that stays within it is read to its end (the connection
 * goes back to the pool); the rest of a longer one is not read: the connection is closed (a hostile receiver cannot
 * fill memory).
 */
function headOf(res: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let ended = false;
    const done = () => {
      ended = true;
      resolve(Buffer.concat(chunks).subarray(0, limit).toString('utf8'));
    };
    res.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= limit && !ended) {
        done();
        res.destroy();
      }
    });
    res.once('end', done);
    res.once('error', reject);
    res.once('close', () => {
      if (!ended) reject(Object.assign(new Error('the receiver closed the connection mid-answer'), { code: 'ECONNRESET' }));
    });
  });
}

/** The URL without user info or query (they may hold credentials), for error messages. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}
