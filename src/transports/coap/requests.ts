/**
 * Answers a fresh request: resolves the route, calls provisioning or the device API, and sends the answer — itself
 * when it fits one message and the piggyback window is open, else through node-coap (separate response, Block2).
 */
import type { AddressInfo } from 'node:net';
import type { OutgoingMessage } from 'coap';
import type { Core } from '../../core/core-types.ts';
import { toFleetgateError } from '../../core/errors.ts';
import type { CoapDeviceApi, DeviceOutcome } from './device-api.ts';
import type { ExchangeCache } from './exchanges.ts';
import type { PendingRequest } from './intake.ts';
import type { ObserveRegistry } from './observe.ts';
import { provision } from './provision.ts';
import { codeReply, diagnosticReply, directAnswer, errorReply, fitsOneMessage, methodNotAllowed, tooLargeReply } from './replies.ts';
import { resolveRoute } from './routes.ts';
import { isOtaPath, otaReply } from './ota.ts';
import { block2, observeValue, uintBuffer, uriPath, uriQuery, type CoapReply } from './wire.ts';

export interface RequestDeps {
  core: Core;
  deviceApi: CoapDeviceApi;
  observers: ObserveRegistry;
  exchanges: ExchangeCache;
  maxPayload: number;
  send(datagram: Buffer, to: AddressInfo): void;
  isOpen(): boolean;
  logError(err: unknown, path: string): void;
  /** node-coap's response for a request whose answer the transport cannot send itself (intake.responseFor). */
  responseFor(request: PendingRequest): OutgoingMessage | undefined;
  /** The request is answered or abandoned (intake.settle). */
  settle(request: PendingRequest): void;
}

/** Handles one fresh request (reassembled from Block1 if it was block-wise). */
export async function handleRequest(deps: RequestDeps, request: PendingRequest): Promise<void> {
  try {
    await respond(deps, request);
  } catch (err) {
    // Never leave a request unanswered: 5.00 straight to the client (RFC 7252 §5.2.1 piggybacked or NON).
    deps.settle(request);
    deps.logError(err, loggablePath(uriPath(request.packet)));
    if (!deps.isOpen()) return;
    const datagram = directAnswer(request.packet, errorReply(err));
    deps.exchanges.finish(request.key, datagram);
    deps.send(datagram, request.rinfo);
  }
}

/** A request path for logs: the access token segment of `/api/v1/{token}/...` is never written out. */
export function loggablePath(segments: readonly string[]): string {
  if (segments[0] === 'api' && segments[1] === 'v1' && segments.length >= 4) return `/api/v1/{token}/${segments.slice(3).join('/')}`;
  if (isOtaPath(segments) && segments.length >= 2) return `/${segments[0]}/{token}${segments.length > 2 ? '/...' : ''}`;
  return `/${segments.join('/')}`;
}

const replyOutcome = (reply: CoapReply): DeviceOutcome => ({ kind: 'reply', reply });

async function respond(deps: RequestDeps, request: PendingRequest): Promise<void> {
  const { packet, rinfo, key } = request;
  const segments = uriPath(packet);
  const observe = request.method === 'GET' ? observeValue(packet) : undefined;
  let outcome: DeviceOutcome;
  try {
    outcome = await route(deps, request, segments, observe);
  } catch (err) {
    if (toFleetgateError(err).code === 'INTERNAL') deps.logError(err, loggablePath(segments));
    outcome = replyOutcome(errorReply(err));
  }
  if (!deps.isOpen()) return deps.settle(request);
  if (outcome.kind === 'observe') {
    // RFC 7641 §3.2/§4.2: the first notification is the response to the registration, with Observe set
    // (RFC 7959 §2.6: its first block when large).
    const sequence = deps.observers.nextSequence();
    const datagram = directAnswer(packet, deps.observers.initial(outcome.observer, outcome.initial, sequence), sequence);
    deps.exchanges.finish(key, datagram);
    deps.send(datagram, rinfo);
    outcome.started();
    return;
  }
  // OTA blocks are read from storage per request and always sent by the transport itself (ota.ts).
  if (isOtaPath(segments)) return answerDirectly(deps, request, outcome.reply);
  if (observe === 0) {
    // node-coap gave an observe stream for this request; a plain answer goes out directly, without Observe.
    return answerDirectly(deps, request, outcome.reply);
  }
  const reply = request.block1 ? { ...outcome.reply, options: [...(outcome.reply.options ?? []), { name: 'Block1', value: request.block1 }] } : outcome.reply;
  // Small and not handed to node-coap yet: piggybacked in the ACK of a CON, or a NON (RFC 7252 §5.2), the bytes
  // node-coap would send. Otherwise node-coap sends it: a separate response after its empty ACK, or Block2.
  const res = request.res === undefined && fitsOneMessage(reply.payload) ? undefined : deps.responseFor(request);
  if (!res) return answerDirectly(deps, request, reply);
  render(res, reply);
  deps.exchanges.finish(key);
}

/** Sends the answer itself and keeps its bytes for duplicates (RFC 7252 §4.5). */
function answerDirectly(deps: RequestDeps, request: PendingRequest, reply: CoapReply): void {
  deps.settle(request);
  const datagram = directAnswer(request.packet, reply);
  deps.exchanges.finish(request.key, datagram);
  deps.send(datagram, request.rinfo);
}

function route(deps: RequestDeps, request: PendingRequest, segments: string[], observe: number | undefined): DeviceOutcome | Promise<DeviceOutcome> {
  const { packet, method, rinfo } = request;
  // The intake reassembled a Block1 transfer into the payload (RFC 7959 §2.5) and bounded it.
  const payload = packet.payload;
  if (payload.length > deps.maxPayload) return replyOutcome(tooLargeReply(deps.maxPayload));
  if (isOtaPath(segments)) {
    return otaReply(deps.core, { method, segments, query: uriQuery(packet), block2: block2(packet), address: rinfo.address }).then(replyOutcome);
  }
  const target = resolveRoute(segments);
  switch (target.kind) {
    case 'unknown':
      return replyOutcome(codeReply('NOT_FOUND', `No resource at /${segments.join('/')}`));
    case 'bad-path':
      return replyOutcome(diagnosticReply('4.00', target.reason)); // spec §8.4: any path without feature -> 4.00
    case 'provision':
      if (method === 'GET') return replyOutcome(diagnosticReply('4.00', 'Provisioning needs POST')); // spec §5.4
      if (method !== 'POST') return replyOutcome(methodNotAllowed(method, `/${segments.join('/')}`));
      return provision(deps.core, payload, { transport: 'coap', address: rinfo.address }).then(replyOutcome);
    case 'device':
      return deps.deviceApi.handle({
        method,
        token: target.token,
        feature: target.feature,
        id: target.id,
        payload,
        query: uriQuery(packet),
        observe,
        endpoint: rinfo,
        coapToken: packet.token,
        confirmable: packet.confirmable,
        path: segments.join('/'),
        blockSize: block2(packet)?.size,
      });
  }
}

/** Writes a reply through node-coap (piggyback or separate response, Block2 for large payloads, response cache). */
function render(res: OutgoingMessage, reply: CoapReply): void {
  res.code = reply.code;
  if (reply.format !== undefined) res.setOption('Content-Format', uintBuffer(reply.format));
  for (const o of reply.options ?? []) res.setOption(o.name as 'Size1', o.value);
  res.end(reply.payload);
}
