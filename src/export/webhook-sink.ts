/**
 * The webhook export sink: one POST per batch with a JSON array body. With a secret, `X-Fleetgate-Signature` carries
 * `sha256=` + hex HMAC-SHA256(secret, timestamp + "." + body) and `X-Fleetgate-Timestamp` the timestamp (ms), so a
 * receiver can refuse replays of old deliveries. 2xx is success; 429 and 503 with Retry-After set the next attempt.
 */
import { createHmac } from 'node:crypto';
import { SinkError, type ExportSink } from '../core/ports/export-sink.ts';
import type { ExportMessage, WebhookDestination } from '../core/export/model.ts';

/** The signature header value for a body sent at `timestamp` (receivers compute the same and compare). */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Retry-After as ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export class WebhookSink implements ExportSink {
  constructor(private readonly destination: WebhookDestination) {}

  async deliver(messages: ExportMessage[]): Promise<void> {
    const body = `[${messages.map((m) => m.json).join(',')}]`;
    const headers: Record<string, string> = { ...this.destination.headers, 'content-type': 'application/json', 'user-agent': 'fleetgate-export' };
    if (this.destination.secret) {
      const timestamp = String(Date.now());
      headers['x-fleetgate-timestamp'] = timestamp;
      headers['x-fleetgate-signature'] = webhookSignature(this.destination.secret, timestamp, body);
    }
    let response: Response;
    try {
      response = await fetch(this.destination.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.destination.timeoutMs), redirect: 'manual' });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why = e.name === 'TimeoutError' ? `no answer within ${this.destination.timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
      throw new SinkError(`POST ${redact(this.destination.url)} failed: ${why}`);
    }
    const text = await headOf(response, 4096);
    if (response.status >= 200 && response.status < 300) return;
    const retry = response.status === 429 || response.status === 503 ? retryAfterMs(response.headers.get('retry-after')) : undefined;
    throw new SinkError(`POST ${redact(this.destination.url)} answered ${response.status}${text ? `: ${text.slice(0, 200)}` : ''}`, retry);
  }

  async close(): Promise<void> {}
}

/** The first `limit` bytes of a response body as text; the rest is not read (a hostile receiver cannot fill memory). */
async function headOf(response: Response, limit: number): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } catch {
    /* a broken body: what was read is enough */
  } finally {
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
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
