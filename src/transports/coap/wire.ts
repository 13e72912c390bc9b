/**
 * CoAP message-level helpers over coap-packet (RFC 7252): option readers, Content-Format numbers, and the few
 * messages the transport writes itself (Reset, empty ACK, notifications).
 */
import { generate, type ParsedPacket } from 'coap-packet';

/** RFC 7252 §12.3 Content-Format numbers the transport uses. */
export const CONTENT_FORMAT = { text: 0, octetStream: 42, json: 50 } as const;

/** RFC 7252 §5.10 option numbers read from raw packets. */
const OPTION = { observe: 6, uriPath: 11, contentFormat: 12, uriQuery: 15, block2: 23, block1: 27, size1: 60 } as const;

const NAME_TO_NUMBER: Record<string, number> = {
  Observe: OPTION.observe,
  'Uri-Path': OPTION.uriPath,
  'Content-Format': OPTION.contentFormat,
  'Uri-Query': OPTION.uriQuery,
  Block2: OPTION.block2,
  Block1: OPTION.block1,
  Size1: OPTION.size1,
};

function optionNumber(name: string | number): number {
  return typeof name === 'number' ? name : (NAME_TO_NUMBER[name] ?? -1);
}

/** All values of one option, in order. */
export function optionValues(packet: Pick<ParsedPacket, 'options'>, number: number): Buffer[] {
  const out: Buffer[] = [];
  for (const o of packet.options ?? []) if (optionNumber(o.name) === number) out.push(o.value);
  return out;
}

/** The first value of one option, undefined when absent. */
export function optionValue(packet: Pick<ParsedPacket, 'options'>, number: number): Buffer | undefined {
  const options = packet.options ?? [];
  for (let i = 0; i < options.length; i++) if (optionNumber(options[i].name) === number) return options[i].value;
  return undefined;
}

/** RFC 7252 §3.2 `uint` option value (big-endian, 0-4 bytes). */
export function readUint(value: Buffer | number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') return value; // node-coap converts some options in place (Observe)
  if (!Buffer.isBuffer(value)) return undefined;
  if (value.length > 4) return undefined;
  let n = 0;
  for (const b of value) n = n * 256 + b;
  return n;
}

/** Uri-Path segments (RFC 7252 §6.5: one option per segment, already percent-decoded on the wire). */
export function uriPath(p: Pick<ParsedPacket, 'options'>): string[] {
  const out: string[] = [];
  for (const o of p.options ?? []) if (optionNumber(o.name) === OPTION.uriPath) out.push(o.value.toString('utf8'));
  return out;
}

const NO_QUERY: ReadonlyMap<string, string> = new Map();

/** Uri-Query as key -> value (first occurrence wins). */
export function uriQuery(p: Pick<ParsedPacket, 'options'>): ReadonlyMap<string, string> {
  if (optionValue(p, OPTION.uriQuery) === undefined) return NO_QUERY;
  const out = new Map<string, string>();
  for (const v of optionValues(p, OPTION.uriQuery)) {
    const text = v.toString('utf8');
    const eq = text.indexOf('=');
    const key = eq < 0 ? text : text.slice(0, eq);
    if (!out.has(key)) out.set(key, eq < 0 ? '' : text.slice(eq + 1));
  }
  return out;
}

/** RFC 7641 §2: the Observe option value, undefined when absent. */
export const observeValue = (p: Pick<ParsedPacket, 'options'>): number | undefined => readUint(optionValue(p, OPTION.observe));

/** RFC 7959 §2.2 Block1: NUM, M and block size; undefined when absent or malformed. */
export const block1 = (p: Pick<ParsedPacket, 'options'>) => blockOption(p, OPTION.block1);

/** RFC 7959 §2.2 Block2 (in a request: the block wanted and its size); undefined when absent or malformed. */
export const block2 = (p: Pick<ParsedPacket, 'options'>) => blockOption(p, OPTION.block2);

function blockOption(p: Pick<ParsedPacket, 'options'>, number: number): { num: number; more: boolean; size: number } | undefined {
  const raw = optionValue(p, number);
  const n = readUint(raw);
  if (n === undefined || raw!.length > 3) return undefined;
  const szx = n & 0x7;
  if (szx === 7) return undefined; // RFC 7959 §2.2: SZX 7 is reserved
  return { num: n >>> 4, more: (n & 0x8) !== 0, size: 1 << (szx + 4) };
}

/** RFC 7252 §3: version 1 header, message type and id, readable even when the rest of the datagram is not. */
export function peekHeader(buf: Buffer): { type: 'CON' | 'NON' | 'ACK' | 'RST'; messageId: number } | undefined {
  if (buf.length < 4 || buf[0] >> 6 !== 1) return undefined;
  const type = (['CON', 'NON', 'ACK', 'RST'] as const)[(buf[0] >> 4) & 0x3];
  return { type, messageId: buf.readUInt16BE(2) };
}

/** RFC 7252 §4.2/§4.3: the Reset that rejects a message (also the answer to a CoAP ping). */
export function resetMessage(messageId: number): Buffer {
  return Buffer.from([0x70, 0x00, (messageId >> 8) & 0xff, messageId & 0xff]);
}

/** RFC 7252 §4.2: an empty ACK (separate response follows). */
export function emptyAck(messageId: number): Buffer {
  return Buffer.from([0x60, 0x00, (messageId >> 8) & 0xff, messageId & 0xff]);
}

/** A reply the transport renders: code `c.dd`, payload, and its Content-Format. */
export interface CoapReply {
  code: string;
  payload?: Buffer;
  format?: number;
  /** Extra options (e.g. Size1 on 4.13, RFC 7959 §4). */
  options?: { name: string; value: Buffer }[];
}

/** Encodes a uint option value in the fewest bytes (RFC 7252 §3.2). */
export function uintBuffer(n: number): Buffer {
  if (n === 0) return Buffer.alloc(0);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from(bytes);
}

const TYPE_BITS = { CON: 0x00, NON: 0x10, ACK: 0x20 } as const;

/**
 * The bytes coap-packet's generate() writes for a message without options and payload (RFC 7252 §3: header and
 * token), built directly: most answers to telemetry are such an empty 2.01.
 */
function encodeBare(type: 'CON' | 'NON' | 'ACK', code: string, messageId: number, token: Buffer): Buffer | undefined {
  if (code.length !== 4 || code[1] !== '.' || token.length > 12) return undefined; // "c.dd", no extended token length
  const cls = code.charCodeAt(0) - 48;
  const detail = (code.charCodeAt(2) - 48) * 10 + (code.charCodeAt(3) - 48);
  if (cls < 0 || cls > 7 || detail < 0 || detail > 31) return undefined;
  const out = Buffer.allocUnsafe(4 + token.length);
  out[0] = 0x40 | TYPE_BITS[type] | token.length;
  out[1] = (cls << 5) | detail;
  out[2] = (messageId >> 8) & 0xff;
  out[3] = messageId & 0xff;
  token.copy(out, 4);
  return out;
}

/** A whole message the transport sends itself (piggybacked ACK, NON/CON response or notification). */
export function encodeMessage(m: {
  type: 'CON' | 'NON' | 'ACK';
  messageId: number;
  token: Buffer;
  reply: CoapReply;
  observe?: number;
  maxAge?: number;
}): Buffer {
  const bare = m.observe === undefined && m.maxAge === undefined && m.reply.format === undefined && !m.reply.options?.length && !m.reply.payload?.length;
  if (bare) {
    const out = encodeBare(m.type, m.reply.code, m.messageId, m.token);
    if (out) return out;
  }
  const options: { name: string; value: Buffer }[] = [];
  if (m.observe !== undefined) options.push({ name: 'Observe', value: uintBuffer(m.observe & 0xffffff) });
  if (m.reply.format !== undefined) options.push({ name: 'Content-Format', value: uintBuffer(m.reply.format) });
  if (m.maxAge !== undefined) options.push({ name: 'Max-Age', value: uintBuffer(m.maxAge) });
  options.push(...(m.reply.options ?? []));
  return generate(
    {
      code: m.reply.code,
      messageId: m.messageId,
      token: m.token,
      confirmable: m.type === 'CON',
      ack: m.type === 'ACK',
      reset: false,
      options,
      payload: m.reply.payload ?? Buffer.alloc(0),
    },
    65535,
  );
}
