/**
 * Every datagram passes here before node-coap sees it (installed as the server's `handleRequest`). It does what
 * node-coap leaves out or gets wrong for a server facing untrusted devices:
 * - a datagram that does not parse is dropped, a CON one rejected with RST (RFC 7252 §4.2); node-coap would send a
 *   5.00 to 127.0.0.1 at the sender's port;
 * - CoAP ping (empty CON) gets its RST (RFC 7252 §4.3);
 * - ACK/RST for our own notifications go to the observe registry;
 * - duplicates are caught by endpoint, Message ID and token for the whole exchange (RFC 7252 §4.5);
 * - payloads and Block1 transfers over the limit get 4.13 with Size1 (RFC 7959 §2.9.3; node-coap would allocate
 *   NUM x SZX bytes for a single forged block), and Block1 bodies are reassembled here (see block1.ts);
 * - a request without Observe and Block2 options (telemetry, attributes, RPC, provisioning) does not go through
 *   node-coap unless its answer needs it: a small answer ready within the piggyback window is sent by the transport
 *   itself (requests.ts), which saves node-coap's per-request streams, timers and response cache. The request is
 *   handed to node-coap when its piggyback window closes (node-coap then sends the empty ACK and the answer as a
 *   separate CON response, RFC 7252 §5.2.2) or when its answer needs Block2 (RFC 7959 §2.2);
 * - datagrams are taken in once per event-loop turn, all that the socket holds, so one group commit covers them
 *   (datagram-drain.ts).
 */
import type { AddressInfo } from 'node:net';
import type { OutgoingMessage } from 'coap';
import { parse, type ParsedPacket } from 'coap-packet';
import type { Block1Assembler } from './block1.ts';
import { DatagramDrain } from './datagram-drain.ts';
import { ExchangeCache, type Exchange } from './exchanges.ts';
import type { ObserveRegistry } from './observe.ts';
import { codeReply, diagnosticReply, directAnswer, errorReply, methodNotAllowed, tooLargeReply, withMaxAge } from './replies.ts';
import { NotificationBlocks } from './notify-blocks.ts';
import { isOtaPath } from './ota.ts';
import { PiggybackWindows } from './piggyback-windows.ts';
import { block1, block2, emptyAck, observeValue, optionValue, peekHeader, readUint, resetMessage, uriPath, uriQuery, type CoapReply } from './wire.ts';

/** node-coap's server surface the intake drives (public fields of its class declaration). */
export interface NodeCoapServer {
  _handle(packet: ParsedPacket, rsinfo: AddressInfo): void;
  _lru: { peek(key: string): unknown };
  _options: { piggybackReplyMs?: number };
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
  /** Starts answering a fresh request (requests.ts handleRequest). */
  process(request: PendingRequest): void;
  /** RFC 7252 §5.2.2: how long a CON request may wait for a piggybacked answer, ms (node-coap's piggybackReplyMs). */
  piggybackReplyMs: number;
  /**
   * Admission by source address (issue 7 §2): undefined to proceed, or the refusal — 4.29 with Max-Age
   * `retryAfterSeconds` and a diagnostic naming the limit. Retransmissions (duplicates) are not counted.
   */
  admit?(address: string): { message: string; retryAfterSeconds: number } | undefined;
}

/** A fresh request being answered (its body reassembled when it came block-wise). */
export interface PendingRequest {
  /** Its duplicate-detection key (exchanges.ts). */
  key: string;
  packet: ParsedPacket;
  rinfo: AddressInfo;
  /** GET, POST, PUT or DELETE. */
  method: string;
  /** RFC 7959 §2.3: the final response of a block-wise request carries the last Block1 option. */
  block1?: Buffer;
  /** node-coap's response, once node-coap has seen the request (see the file comment). */
  res?: OutgoingMessage;
  /** A CON request whose piggyback window is watched: when it closes (performance.now(), ms). */
  deadline?: number;
}

/** The request inside node-coap's synchronous `_handle`, so the request listener can attach node-coap's response. */
interface Handover {
  request: PendingRequest;
  emitted: boolean;
}

const BLOCK1 = 27;
const SIZE1 = 60;

const REQUEST_TAG = 292;

const HAS_OBSERVE = 1;
const HAS_BLOCK1 = 2;
const HAS_BLOCK2 = 4;
/** RFC 7959 §2.2: a Block1/Block2 value is 0-3 bytes. node-coap throws on longer ones (found by test/fuzz). */
const BAD_BLOCK = 8;

/** One pass over a request's options: which of Observe, Block1, Block2 it has (coap-packet names these three). */
function scanOptions(packet: ParsedPacket): number {
  let flags = 0;
  for (const o of packet.options) {
    if (o.name === 'Observe') flags |= HAS_OBSERVE;
    else if (o.name === 'Block1') flags |= o.value.length > 3 ? HAS_BLOCK1 | BAD_BLOCK : HAS_BLOCK1;
    else if (o.name === 'Block2') flags |= o.value.length > 3 ? HAS_BLOCK2 | BAD_BLOCK : HAS_BLOCK2;
  }
  return flags;
}
const METHODS: Record<string, string> = { '0.01': 'GET', '0.02': 'POST', '0.03': 'PUT', '0.04': 'DELETE' };

export class Intake {
  /** Set while node-coap handles a fresh request. */
  private current: Handover | undefined;
  /** CON requests answered by the transport itself whose piggyback window is open. */
  private readonly windows: PiggybackWindows<PendingRequest>;
  private readonly drain = new DatagramDrain((msg, rinfo) => this.take(msg, rinfo));

  constructor(private readonly deps: IntakeDeps) {
    this.windows = new PiggybackWindows(deps.piggybackReplyMs, (request) => this.late(request));
  }

  /** node-coap's `request` listener: attaches its response to the request being handed over. */
  readonly onNodeCoapRequest = (res: OutgoingMessage): void => {
    const current = this.current;
    if (!current) return;
    current.emitted = true;
    current.request.res = res;
  };

  /** The `(msg, rinfo)` listener node-coap's `listen` attaches to the socket (see datagram-drain.ts). */
  readonly onDatagram = this.drain.onDatagram;

  private take(msg: Buffer, rinfo: AddressInfo): void {
    try {
      this.intake(msg, rinfo);
    } catch (err) {
      this.deps.onInternalError(err);
    }
  }

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
    const flags = scanOptions(packet);
    if (flags & BAD_BLOCK) return this.answer(packet, rinfo, key, diagnosticReply('4.02', 'Malformed Block option')); // RFC 7252 §5.4.1
    const wanted = method === 'GET' && flags & HAS_BLOCK2 ? block2(packet) : undefined;
    if (wanted && wanted.num > 0) {
      // RFC 7959 §2.6: the rest of a large notification, from the representation the notification came from.
      const served = deps.observers.blocks.serve(NotificationBlocks.key(rinfo, uriPath(packet).join('/')), wanted, observeValue(packet) === 0);
      if (served) return this.answer(packet, rinfo, key, served.reply, served.observe);
    }
    let finalBlock: Buffer | undefined;
    if (flags & HAS_BLOCK1) {
      const b = block1(packet);
      if (!b) return this.answer(packet, rinfo, key, diagnosticReply('4.00', 'Malformed Block1 option'));
      if (b.more && packet.payload.length !== b.size) return this.answer(packet, rinfo, key, diagnosticReply('4.00', 'Block1 payload does not match its block size'));
      // RFC 7959 §4: Size1 announces the whole body; refuse early.
      const announced = readUint(optionValue(packet, SIZE1));
      if (b.num * b.size + packet.payload.length > deps.maxPayload || (announced ?? 0) > deps.maxPayload) return this.answer(packet, rinfo, key, tooLargeReply(deps.maxPayload));
      const bodyKey = `${rinfo.address}:${rinfo.port}|${packet.code}|${uriPath(packet).join('/')}?${[...uriQuery(packet)].join('&')}|${optionValue(packet, REQUEST_TAG)?.toString('hex') ?? ''}`;
      const result = deps.blocks.accept(bodyKey, b, packet.payload);
      const echo = optionValue(packet, BLOCK1);
      switch (result.kind) {
        case 'incomplete':
          return this.answer(packet, rinfo, key, diagnosticReply('4.08', 'Block1 transfer is incomplete'));
        case 'too-large':
          return this.answer(packet, rinfo, key, tooLargeReply(deps.maxPayload));
        case 'continue': // RFC 7959 §2.3: 2.31 Continue echoes the block
          return this.answer(packet, rinfo, key, { code: '2.31', options: [{ name: 'Block1', value: echo! }] });
        case 'complete':
          packet.payload = result.payload;
          packet.options = packet.options.filter((o) => o.name !== 'Block1');
          finalBlock = echo;
      }
    }
    // RFC 7641 §2: Observe only means something on GET; node-coap would answer 5.00 to the wrong address otherwise.
    if (method !== 'GET' && flags & HAS_OBSERVE) packet.options = packet.options.filter((o) => o.name !== 'Observe');
    deps.exchanges.begin(key);
    const request: PendingRequest = { key, packet, rinfo, method, block1: finalBlock };
    if (isOtaPath(uriPath(packet))) {
      // OTA blocks: read from storage and answered by the transport itself, unwatched (ota.ts).
    } else if (flags & HAS_BLOCK2 || (method === 'GET' && flags & HAS_OBSERVE)) {
      // Observe (GET) and Block2 requests go through node-coap first (its observe stream, its Block2 cache).
      let emitted: boolean;
      try {
        emitted = this.handOverRequest(request, false);
      } catch (err) {
        deps.onInternalError(err);
        return this.answer(packet, rinfo, key, errorReply(err));
      }
      // node-coap answered synchronously (a cached Block2 block): the answer is in its LRU.
      if (!emitted) return deps.exchanges.finish(key);
    } else if (packet.confirmable) {
      this.windows.watch(request);
    }
    deps.process(request);
  }

  /**
   * Gives a request's answer to node-coap when the transport cannot send it itself (it needs Block2, or the piggyback
   * window closed): the request is handed to node-coap now, unless that happened already. Undefined when node-coap
   * would not take it (then the caller answers directly).
   */
  responseFor(request: PendingRequest): OutgoingMessage | undefined {
    this.settle(request);
    if (request.res) return request.res;
    try {
      this.handOverRequest(request, false);
    } catch (err) {
      this.deps.onInternalError(err);
    }
    return request.res;
  }

  /** The request is being answered (or abandoned): its piggyback window no longer matters. */
  settle(request: PendingRequest): void {
    this.windows.settle(request);
  }

  /** Stops the piggyback timer (shutdown). */
  close(): void {
    this.windows.close();
  }

  /** The answer is late: node-coap sends the empty ACK at once and later the answer as a CON (RFC 7252 §5.2.2). */
  private late(request: PendingRequest): void {
    try {
      if (this.handOverRequest(request, true)) this.deps.exchanges.markSeparate(request.key);
    } catch (err) {
      this.deps.onInternalError(err);
    }
  }

  /**
   * Runs node-coap's `_handle` for a fresh request and picks up its response (true when node-coap emitted the
   * request). `late`: the piggyback window is over, so node-coap's empty ACK goes out on its next timer turn.
   */
  private handOverRequest(request: PendingRequest, late: boolean): boolean {
    const { server } = this.deps;
    const handover: Handover = { request, emitted: false };
    const piggyback = server._options.piggybackReplyMs;
    this.current = handover;
    if (late) server._options.piggybackReplyMs = 0;
    try {
      server._handle(request.packet, request.rinfo);
    } finally {
      this.current = undefined;
      server._options.piggybackReplyMs = piggyback;
    }
    return handover.emitted;
  }

  /** RFC 7252 §4.5: same endpoint, Message ID and token again. */
  private duplicate(packet: ParsedPacket, rinfo: AddressInfo, key: string, seen: Exchange): void {
    if (seen.state === 'pending') {
      // Still working. Past the piggyback window the empty ACK went out: acknowledge the copy again (RFC 7252 §4.5).
      if (seen.separate && packet.confirmable) this.deps.send(emptyAck(packet.messageId), rinfo);
      return; // otherwise the answer (or node-coap's empty ACK) is on its way
    }
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
