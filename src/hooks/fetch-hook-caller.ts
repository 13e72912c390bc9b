/**
 * The HookCaller adapter over Node's fetch (undici): one POST with an AbortSignal timeout covering the connection,
 * the headers and the body, redirects refused (a hook that moves is misconfigured), the answer read up to a limit.
 */
import type { HookCaller, HookCallRequest, HookCallResponse } from '../core/ports/hook-caller.ts';

export class FetchHookCaller implements HookCaller {
  async post(request: HookCallRequest): Promise<HookCallResponse> {
    const signal = AbortSignal.timeout(request.timeoutMs);
    const res = await fetch(request.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...request.headers },
      body: request.body,
      redirect: 'error',
      signal,
    });
    return { status: res.status, body: await readBounded(res, request.maxResponseBytes) };
  }
}

/** The body as UTF-8 text; rejects (and stops reading) past `limit` bytes. */
async function readBounded(res: Response, limit: number): Promise<string> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw new Error(`hook answer longer than ${limit} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
