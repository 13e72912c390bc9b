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
  const w = startBody(messages);
  writeMessages(w, messages, 0, Infinity);
  return endBody(w);
}

/**
 * Body bytes written in one event-loop turn at most (then the render yields): ~0.1-0.3 ms of writing. A lane's batch of
 * a busy fleet is megabytes (1,000 messages of ~37 readings each: ~1.9 MB), whose render held the event loop for
 * ~2-3 ms in one piece, ~8-13 ms for a round's 4 lanes, a stall of every device's traffic (bench/RESULTS.md,
 * "Data out, session 9").
 */
export const RENDER_SLICE_BYTES = 128 * 1024;

/**
 * webhookBody, yielding to the event loop (setImmediate) after every `sliceBytes` written: the same bytes. Written into
 * `reuse` when it is large enough (a body buffer of an earlier request, WebhookSink's spares), else into a new buffer
 * `headroom` times the size it needs.
 */
export async function renderWebhookBody(messages: readonly ExportMessage[], sliceBytes = RENDER_SLICE_BYTES, reuse?: Buffer, headroom = 1): Promise<Buffer> {
  const w = startBody(messages, reuse, headroom);
  for (let i = 0; i < messages.length; ) {
    i = writeMessages(w, messages, i, w.at + sliceBytes);
    if (i < messages.length) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return endBody(w);
}

function startBody(messages: readonly ExportMessage[], reuse?: Buffer, headroom = 1): BodyWriter {
  let size = 2;
  for (const m of messages) size += (m.writeTo ? m.likelyBytes! : m.json.length + (m.json.length >> 3) + 16) + 1;
  // A body buffer sized near what it will hold: a large over-sized one (external memory) brings garbage collections on.
  const w = new BodyWriter(size, reuse, headroom);
  w.buf[w.at++] = 0x5b; // [
  return w;
}

/** Writes messages from `from` on until the body reaches `until` bytes (at least one); returns the next one's index. */
function writeMessages(w: BodyWriter, messages: readonly ExportMessage[], from: number, until: number): number {
  let i = from;
  while (i < messages.length) {
    const m = messages[i];
    if (i > 0) {
      w.ensure(1);
      w.buf[w.at++] = 0x2c; // ,
    }
    if (m.writeTo) m.writeTo(w);
    else w.text(m.json);
    i++;
    if (w.at >= until) break;
  }
  return i;
}

function endBody(w: BodyWriter): Buffer {
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
  /** The request's body was handed to the socket whole before the answer came (its buffer is free). */
  bodySent: boolean;
}

/**
 * One keep-alive connection pool per destination over node:http(s): a POST costs the bench's server a third of what
 * fetch() cost it (bench/RESULTS.md, "Data out"), and delivery sends one per lane and batch.
 */
export class WebhookSink implements ExportSink {
  private readonly url: URL;
  private readonly agent: http.Agent;

  /**
   * Body buffers of answered requests, written into again by the next bodies. A lane's body is megabytes of memory
   * outside V8's heap; with one allocated per POST (tens of MB a second) an 8 s benchmark run had 10 full garbage
   * collections of 6-25 ms each, the next run with reuse none (bench/RESULTS.md, "Data out, session 9").
   */
  private readonly spares: Buffer[] = [];

  constructor(private readonly destination: WebhookDestination) {
    this.url = new URL(destination.url);
    const options = { keepAlive: true, maxSockets: 8, maxFreeSockets: 8 };
    this.agent = this.url.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
  }

  async deliver(messages: ExportMessage[]): Promise<void> {
    // A new buffer gets a quarter more room than this body needs: the next bodies are about as large, and one a little
    // larger would not fit an exact-sized spare.
    const payload = await renderWebhookBody(messages, RENDER_SLICE_BYTES, this.largestSpare(), SPARE_HEADROOM);
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
      if (answer.bodySent) this.keepSpare(payload);
    } catch (err) {
      const e = err as Error & { code?: string };
      const why = e.name === 'TimeoutError' ? `no answer within ${this.destination.timeoutMs} ms` : (e.code ?? e.message);
      throw new SinkError(`POST ${redact(this.destination.url)} failed: ${why}`);
    }
    if (answer.status >= 200 && answer.status < 300) return;
    const retry = answer.status === 429 || answer.status === 503 ? retryAfterMs(answer.retryAfter) : undefined;
    throw new SinkError(`POST ${redact(this.destination.url)} answered ${answer.status}${answer.text ? `: ${answer.text.slice(0, 200)}` : ''}`, retry);
  }

  /**
   * Keeps the buffer `payload` was written in for a later body, once its request is answered and its body was handed
   * to the socket whole (Answer.bodySent): nothing reads it any more. Not a small one (it may be a slice of
   * Node's shared pool) and not beyond SPARE_MAX_BYTES bytes or SPARES buffers.
   */
  private keepSpare(payload: Buffer): void {
    const whole = payload.buffer;
    if (payload.byteOffset !== 0 || whole.byteLength < SPARE_MIN_BYTES || whole.byteLength > SPARE_MAX_BYTES || this.spares.length >= SPARES) return;
    this.spares.push(Buffer.from(whole, 0, whole.byteLength));
  }

  /** Takes the largest spare buffer out of the spares (undefined when there is none). */
  private largestSpare(): Buffer | undefined {
    if (this.spares.length === 0) return undefined;
    let k = 0;
    for (let i = 1; i < this.spares.length; i++) if (this.spares[i].length > this.spares[k].length) k = i;
    return this.spares.splice(k, 1)[0];
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
          // writableFinished: the whole body reached the socket (a receiver may answer before it read all of it).
          resolve({ status: res.statusCode ?? 0, retryAfter: headerText(res.headers['retry-after']), text, bodySent: req.writableFinished });
        }, fail);
      });
      const timer = setTimeout(() => {
        timedOut = Object.assign(new Error('timeout'), { name: 'TimeoutError' });
        req.destroy(timedOut);
      }, this.destination.timeoutMs);
      // on, not once: the body goes out in several writes, and an 'error' without a listener would end the process.
      req.on('error', (err) => {
        clearTimeout(timer);
        fail(err);
      });
      void writeInSlices(req, payload);
    });
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }
}

const BODY_LIMIT = 4096;

/** Spare body buffers a sink keeps at most (delivery sends up to its concurrency of requests at once), and their sizes. */
const SPARES = 4;
const SPARE_MIN_BYTES = 64 * 1024;
const SPARE_MAX_BYTES = 16 * 1024 * 1024;
const SPARE_HEADROOM = 1.25;

/**
 * Body bytes handed to the socket in one event-loop turn at most. A write of a whole body of megabytes copied it into
 * the kernel (and, on loopback, through to the receiver's socket) in one system call of a few ms on the event loop.
 */
export const WRITE_SLICE_BYTES = 256 * 1024;

/** Sends `payload` as the request's body, a slice an event-loop turn; stops if the request was destroyed (a timeout, an error). */
export async function writeInSlices(req: http.ClientRequest, payload: Buffer, sliceBytes = WRITE_SLICE_BYTES): Promise<void> {
  for (let at = 0; ; at += sliceBytes) {
    if (req.destroyed) return;
    if (payload.length - at <= sliceBytes) {
      req.end(at === 0 ? payload : payload.subarray(at));
      return;
    }
    req.write(payload.subarray(at, at + sliceBytes));
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

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
