/**
 * Every datagram passes here before node-coap sees it (installed as the server's `handleRequest`). It does what
 * node-coap leaves out or gets wrong for a server facing untrusted devices:
 * - a datagram that does not parse is dropped, a CON one rejected with RST (RFC 7252 §4.2); node-coap would send a
 *   5.00 to 127.0.0.1 at the sender's port;
 * - CoAP ping (empty CON) gets its RST (RFC 7252 §4.3);
 * - ACK/RST for our own notifications go to the observe registry;
 * - duplicates are caught by endpoint, Message ID and token for the whole exchange (RFC 7252 §4.5);
 * - payloads and Block1 transfers over the limit get 4.13 with Size1 (RFC 7959 §2.9.3; node-coap would allocate
 *   NUM x SZX bytes for a single forged block), and Block1 bodies are reassembled here (see block1.ts).
 */
import type { AddressInfo } from 'node:net';
import { parse, type ParsedPacket } from 'coap-packet';
import type { Block1Assembler } from './block1.ts';
import { ExchangeCache } from './exchanges.ts';
import type { ObserveRegistry } from './observe.ts';
import { codeReply, diagnosticReply, errorReply, methodNotAllowed, tooLargeReply, withMaxAge } from './replies.ts';
import { NotificationBlocks } from './notify-blocks.ts';
import { block1, block2, emptyAck, encodeMessage, observeValue, optionValues, peekHeader, readUint, resetMessage, uriPath, uriQuery, type CoapReply } from './wire.ts';

/** node-coap's server surface the intake drives (public fields of its class declaration). */
export interface NodeCoapServer {
  _handle(packet: ParsedPacket, rsinfo: AddressInfo): void;
  _lru: { peek(key: string): unknown };
}

export interface IntakeDeps {
  server: NodeCoapServer;
  exchanges: ExchangeCache;
  blocks: Block1Assembler;
  observers: ObserveRegistry;
  maxPayload: number;
  send(datagram: Buffer, to: AddressInfo): void;
  isClosing(): boolean;
  onInternalError(err: unknown): void;
  /**
   * Admission by source address (issue 7 §2): undefined to proceed, or the refusal — 4.29 with Max-Age
   * `retryAfterSeconds` and a diagnostic naming the limit. Retransmissions (duplicates) are not counted.
   */
  admit?(address: string): { message: string; retryAfterSeconds: number } | undefined;
}

/** The request currently inside node-coap's synchronous `_handle`, so the request listener can pick up its key. */
export interface CurrentExchange {
  key: string;
  emitted: boolean;
  /** RFC 7959 §2.3: the final response of a block-wise request carries the last Block1 option. */
  block1?: Buffer;
}

const OBSERVE = 6;
const BLOCK1 = 27;
const BLOCK2 = 23;
const SIZE1 = 60;

/** RFC 7959 §2.2: a Block1/Block2 value is 0-3 bytes. node-coap throws on longer ones (found by test/fuzz). */
const badBlockOption = (packet: ParsedPacket): boolean =>
  packet.options.some((o) => (o.name === 'Block2' || o.name === 'Block1' || o.name === String(BLOCK2) || o.name === String(BLOCK1)) && o.value.length > 3);
const REQUEST_TAG = 292;
const METHODS: Record<string, string> = { '0.01': 'GET', '0.02': 'POST', '0.03': 'PUT', '0.04': 'DELETE' };

/** Answers a request directly: piggybacked in the ACK of a CON, or as a NON (RFC 7252 §5.2). */
export function directAnswer(packet: ParsedPacket, reply: CoapReply, observe?: number): Buffer {
  return encodeMessage({ type: packet.confirmable ? 'ACK' : 'NON', messageId: packet.messageId, token: packet.token, reply, observe });
}

export class Intake {
  /** Set while node-coap handles a fresh request. */
  current: CurrentExchange | undefined;

  constructor(private readonly deps: IntakeDeps) {}

  /** The `(msg, rinfo)` listener node-coap's `listen` attaches to the socket. */
  readonly onDatagram = (msg: Buffer, rinfo: AddressInfo): void => {
    try {
      this.intake(msg, rinfo);
    } catch (err) {
      this.deps.onInternalError(err);
    }
  };

  private intake(msg: Buffer, rinfo: AddressInfo): void {
    const { deps } = this;
    let packet: ParsedPacket;
    try {
      packet = parse(msg);
    } catch {
      const header = peekHeader(msg);
      if (header?.type === 'CON') deps.send(resetMessage(header.messageId), rinfo); // RFC 7252 §4.2: reject
      return; // RFC 7252 §4.3: silently ignore other format errors
    }
    if (packet.ack || packet.reset) {
      // RFC 7252 §4.1: an ACK or RST a server can get is Empty (0.00, no token, options or payload); anything
      // else is a format error, silently ignored (§4.2, §4.3) rather than handed to node-coap (test/fuzz finding).
      if (packet.code !== '0.00' || packet.token.length > 0 || packet.options.length > 0 || packet.payload.length > 0) return;
      if (deps.observers.onAckOrReset(rinfo, packet.messageId, packet.reset)) return;
      return this.handOver(packet, rinfo); // ACK of node-coap's separate response: stops its retransmission
    }
    if (packet.code === '0.00' || packet.code[0] !== '0') {
      // RFC 7252 §4.3 ping (empty CON) and CONs we cannot process (responses, reserved classes) get RST.
      if (packet.confirmable) deps.send(resetMessage(packet.messageId), rinfo);
      return;
    }
    const key = ExchangeCache.key(`${rinfo.address}:${rinfo.port}`, packet.messageId, packet.token);
    const seen = deps.exchanges.get(key);
    if (seen) return this.duplicate(packet, rinfo, key, seen);
    if (deps.isClosing()) return this.answer(packet, rinfo, key, codeReply('SHUTTING_DOWN', 'Server is shutting down'));
    const refusal = deps.admit?.(rinfo.address);
    if (refusal) return this.answer(packet, rinfo, key, withMaxAge(codeReply('RATE_LIMITED', refusal.message), refusal.retryAfterSeconds)); // RFC 8516
    const method = METHODS[packet.code];
    if (!method) return this.answer(packet, rinfo, key, methodNotAllowed(`Method ${packet.code}`, 'this server'));
    if (packet.payload.length > deps.maxPayload) return this.answer(packet, rinfo, key, tooLargeReply(deps.maxPayload));
    if (badBlockOption(packet)) return this.answer(packet, rinfo, key, diagnosticReply('4.02', 'Malformed Block option')); // RFC 7252 §5.4.1
    const wanted = method === 'GET' ? block2(packet) : undefined;
    if (wanted && wanted.num > 0) {
      // RFC 7959 §2.6: the rest of a large notification, from the representation the notification came from.
      const served = deps.observers.blocks.serve(NotificationBlocks.key(rinfo, uriPath(packet).join('/')), wanted, observeValue(packet) === 0);
      if (served) return this.answer(packet, rinfo, key, served.reply, served.observe);
    }
    let finalBlock: Buffer | undefined;
    if (optionValues(packet, BLOCK1).length > 0) {
      const b = block1(packet);
      if (!b) return this.answer(packet, rinfo, key, diagnosticReply('4.00', 'Malformed Block1 option'));
      if (b.more && packet.payload.length !== b.size) return this.answer(packet, rinfo, key, diagnosticReply('4.00', 'Block1 payload does not match its block size'));
      // RFC 7959 §4: Size1 announces the whole body; refuse early.
      const announced = readUint(optionValues(packet, SIZE1)[0]);
      if (b.num * b.size + packet.payload.length > deps.maxPayload || (announced ?? 0) > deps.maxPayload) return this.answer(packet, rinfo, key, tooLargeReply(deps.maxPayload));
      const bodyKey = `${rinfo.address}:${rinfo.port}|${packet.code}|${uriPath(packet).join('/')}?${[...uriQuery(packet)].join('&')}|${optionValues(packet, REQUEST_TAG)[0]?.toString('hex') ?? ''}`;
      const result = deps.blocks.accept(bodyKey, b, packet.payload);
      const echo = optionValues(packet, BLOCK1)[0];
      switch (result.kind) {
        case 'incomplete':
          return this.answer(packet, rinfo, key, diagnosticReply('4.08', 'Block1 transfer is incomplete'));
        case 'too-large':
          return this.answer(packet, rinfo, key, tooLargeReply(deps.maxPayload));
        case 'continue': // RFC 7959 §2.3: 2.31 Continue echoes the block
          return this.answer(packet, rinfo, key, { code: '2.31', options: [{ name: 'Block1', value: echo }] });
        case 'complete':
          packet.payload = result.payload;
          packet.options = packet.options.filter((o) => o.name !== 'Block1' && o.name !== BLOCK1);
          finalBlock = echo;
      }
    }
    // RFC 7641 §2: Observe only means something on GET; node-coap would answer 5.00 to the wrong address otherwise.
    if (method !== 'GET') packet.options = packet.options.filter((o) => o.name !== 'Observe' && o.name !== OBSERVE);
    deps.exchanges.begin(key);
    this.current = { key, emitted: false, block1: finalBlock };
    try {
      deps.server._handle(packet, rinfo);
    } catch (err) {
      deps.onInternalError(err);
      return this.answer(packet, rinfo, key, errorReply(err));
    } finally {
      const emitted = this.current?.emitted;
      this.current = undefined;
      // node-coap answered synchronously (a cached Block2 block): the answer is in its LRU.
      if (!emitted) deps.exchanges.finish(key);
    }
  }

  /** RFC 7252 §4.5: same endpoint, Message ID and token again. */
  private duplicate(packet: ParsedPacket, rinfo: AddressInfo, key: string, seen: { state: string; replay?: Buffer }): void {
    if (seen.state === 'pending') return; // still working: the answer (or node-coap's empty ACK) is on its way
    if (seen.replay) return this.deps.send(seen.replay, rinfo);
    // node-coap keeps piggybacked and NON answers under `address:port/mid` + token; it replays them itself.
    if (this.deps.server._lru.peek(`${rinfo.address}:${rinfo.port}/${packet.messageId}${packet.token.toString('hex')}`)) return this.handOver(packet, rinfo);
    // Answered separately (empty ACK, then a CON response that retransmits itself): acknowledge again.
    if (packet.confirmable) this.deps.send(emptyAck(packet.messageId), rinfo);
  }

  private answer(packet: ParsedPacket, rinfo: AddressInfo, key: string, reply: CoapReply, observe?: number): void {
    const datagram = directAnswer(packet, reply, observe);
    if (!this.deps.exchanges.get(key)) this.deps.exchanges.begin(key);
    this.deps.exchanges.finish(key, datagram);
    this.deps.send(datagram, rinfo);
  }

  private handOver(packet: ParsedPacket, rinfo: AddressInfo): void {
    try {
      this.deps.server._handle(packet, rinfo);
    } catch (err) {
      this.deps.onInternalError(err);
    }
  }
}
