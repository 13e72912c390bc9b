/**
 * node-coap's `request` listener: resolves the route, calls provisioning or the device API, and writes the answer.
 */
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, OutgoingMessage } from 'coap';
import type { ParsedPacket } from 'coap-packet';
import type { Core } from '../../core/core-types.ts';
import { toFleetgateError } from '../../core/errors.ts';
import type { CoapDeviceApi, DeviceOutcome } from './device-api.ts';
import type { ExchangeCache } from './exchanges.ts';
import { directAnswer } from './intake.ts';
import type { ObserveRegistry } from './observe.ts';
import { provision } from './provision.ts';
import { codeReply, diagnosticReply, errorReply, methodNotAllowed, tooLargeReply } from './replies.ts';
import { resolveRoute } from './routes.ts';
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
}

/** Handles one request that node-coap passed on (fresh, reassembled from Block1 if it was block-wise). */
export async function handleRequest(deps: RequestDeps, req: IncomingMessage, res: OutgoingMessage, exchange: { key: string; block1?: Buffer }): Promise<void> {
  const packet = req._packet as unknown as ParsedPacket;
  try {
    await respond(deps, req, res, exchange, packet);
  } catch (err) {
    // Never leave a request unanswered: 5.00 straight to the client (RFC 7252 §5.2.1 piggybacked or NON).
    deps.logError(err, req.url);
    if (!deps.isOpen()) return;
    const datagram = directAnswer(packet, errorReply(err));
    deps.exchanges.finish(exchange.key, datagram);
    deps.send(datagram, req.rsinfo);
  }
}

async function respond(deps: RequestDeps, req: IncomingMessage, res: OutgoingMessage, exchange: { key: string; block1?: Buffer }, packet: ParsedPacket): Promise<void> {
  const exchangeKey = exchange.key;
  const rinfo = req.rsinfo;
  const segments = uriPath(packet);
  const path = `/${segments.join('/')}`;
  const observe = req.method === 'GET' ? observeValue(packet) : undefined;
  let outcome: DeviceOutcome;
  try {
    outcome = await route(deps, req, packet, segments, path, observe);
  } catch (err) {
    if (toFleetgateError(err).code === 'INTERNAL') deps.logError(err, path);
    outcome = { kind: 'reply', reply: errorReply(err) };
  }
  if (!deps.isOpen()) return;
  if (outcome.kind === 'observe') {
    // RFC 7641 §3.2/§4.2: the first notification is the response to the registration, with Observe set
    // (RFC 7959 §2.6: its first block when large).
    const sequence = deps.observers.nextSequence();
    const datagram = directAnswer(packet, deps.observers.initial(outcome.observer, outcome.initial, sequence), sequence);
    deps.exchanges.finish(exchangeKey, datagram);
    deps.send(datagram, rinfo);
    outcome.started();
    return;
  }
  if (observe === 0) {
    // node-coap gave an observe stream for this request; a plain answer goes out directly, without Observe.
    const datagram = directAnswer(packet, outcome.reply);
    deps.exchanges.finish(exchangeKey, datagram);
    deps.send(datagram, rinfo);
    return;
  }
  render(res, exchange.block1 ? { ...outcome.reply, options: [...(outcome.reply.options ?? []), { name: 'Block1', value: exchange.block1 }] } : outcome.reply);
  deps.exchanges.finish(exchangeKey);
}

async function route(deps: RequestDeps, req: IncomingMessage, packet: ParsedPacket, segments: string[], path: string, observe: number | undefined): Promise<DeviceOutcome> {
  const reply = (r: CoapReply): DeviceOutcome => ({ kind: 'reply', reply: r });
  // node-coap reassembled a Block1 transfer into req.payload (RFC 7959 §2.5); the intake bounded it.
  const payload = req.payload ?? Buffer.alloc(0);
  if (payload.length > deps.maxPayload) return reply(tooLargeReply(deps.maxPayload));
  const target = resolveRoute(segments);
  switch (target.kind) {
    case 'unknown':
      return reply(codeReply('NOT_FOUND', `No resource at ${path}`));
    case 'bad-path':
      return reply(diagnosticReply('4.00', target.reason)); // spec §8.4: any path without feature -> 4.00
    case 'provision':
      if (req.method === 'GET') return reply(diagnosticReply('4.00', 'Provisioning needs POST')); // spec §5.4
      if (req.method !== 'POST') return reply(methodNotAllowed(req.method, path));
      return reply(await provision(deps.core, payload, { transport: 'coap', address: req.rsinfo.address }));
    case 'device':
      return deps.deviceApi.handle({
        method: req.method,
        token: target.token,
        feature: target.feature,
        id: target.id,
        payload,
        query: uriQuery(packet),
        observe,
        endpoint: req.rsinfo,
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
