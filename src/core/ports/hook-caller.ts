/**
 * The port through which core calls an HTTP hook (DESIGN "core/ports/: an HTTP hook caller"). Core builds the
 * request and judges the answer; the adapter (src/hooks/fetch-hook-caller.ts) only moves bytes, so core never sees
 * a socket.
 */

/** One POST to a hook. */
export interface HookCallRequest {
  url: string;
  /** JSON text of the body. */
  body: string;
  headers: Record<string, string>;
  /** The call is abandoned (rejected) after this long, ms. */
  timeoutMs: number;
  /** Largest answer body read, bytes; a longer one rejects. */
  maxResponseBytes: number;
}

/** What the hook answered. */
export interface HookCallResponse {
  status: number;
  body: string;
}

export interface HookCaller {
  /** POSTs `request`; rejects when the hook is unreachable, too slow, or its answer is too long. */
  post(request: HookCallRequest): Promise<HookCallResponse>;
}
