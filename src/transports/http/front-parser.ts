/**
 * The socket front's request-head parser (socket-front.ts): it recognises only the lean routes' strict subset of
 * HTTP/1.1 and says "hand over" for everything else, as early as a byte shows it, so that node:http's parser then sees
 * the same bytes and answers them as it always has (a 400 for a bad byte comes as soon as the byte does).
 *
 * Taken: `POST <target> HTTP/1.1` with a target of path characters only, then header lines of RFC 9110 token names
 * and field values of visible characters, SP, HTAB or obs-text (RFC 9110 §5.5) ending in CRLF (RFC 9112 §2.2: no
 * bare CR or LF, no obs-fold), the whole head within FRONT_MAX_HEAD bytes (node:http's limit is 16 KiB: anything near
 * it is node's to judge) and FRONT_MAX_HEADERS lines; exactly one Host (node:http requires it), exactly one
 * Content-Length of digits, at most one Content-Type and one Connection; no Transfer-Encoding, Expect, Upgrade or
 * Proxy-Connection; Connection absent, `keep-alive` or `close`. Whether the URL, Content-Type and length suit a lean route is the front's to decide.
 */
import { maxHeaderSize } from 'node:http';

/**
 * Longest request head the front reads, bytes: half node:http's maxHeaderSize (16 KiB unless lowered with
 * --max-http-header-size), at most 8 KiB, so that a head near node's limit is always node's to judge.
 */
export const FRONT_MAX_HEAD = Math.min(8192, Math.floor(maxHeaderSize / 2));
/** Most header lines the front reads. */
export const FRONT_MAX_HEADERS = 64;

/** A head the front may serve. */
export interface FrontHead {
  url: string;
  /** The trimmed Content-Type, if sent. */
  contentType: string | undefined;
  contentLength: number;
  /** `Connection: close` was sent: the answer closes the connection. */
  close: boolean;
  /** Offset of the body's first byte. */
  bodyStart: number;
}

/** More bytes are needed to decide. */
export const NEED_MORE = 0;
/** Not the strict subset: node:http must have these bytes. */
export const HAND_OVER = 1;

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const REQUEST_PREFIX = Buffer.from('POST /', 'latin1');
const VERSION_SUFFIX = Buffer.from(' HTTP/1.1\r\n', 'latin1');

/** Bytes by class: 1 = tchar (RFC 9110 §5.6.2), 2 = target character (path of a lean route's URL). */
const TCHAR = new Uint8Array(256);
const TARGET = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;
for (const c of "/._~!$&'()*+,=:@-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TARGET[c.charCodeAt(0)] = 1;

/** A field-value byte: VCHAR, SP, HTAB or obs-text. */
const fieldByte = (b: number): boolean => (b >= 0x20 && b !== 0x7f) || b === HTAB;

/** Compares `buf` from `at` with `expected` as far as `buf` goes: 1 = all of it matched, 0 = a prefix, -1 = no. */
function matchesAt(buf: Buffer, at: number, expected: Buffer): number {
  const n = Math.min(expected.length, buf.length - at);
  for (let i = 0; i < n; i++) if (buf[at + i] !== expected[i]) return -1;
  return n === expected.length ? 1 : 0;
}

/** The value of a header line without its optional whitespace (node:http trims it the same way). */
function trimmedValue(buf: Buffer, start: number, end: number): string {
  while (start < end && (buf[start] === SP || buf[start] === HTAB)) start++;
  while (end > start && (buf[end - 1] === SP || buf[end - 1] === HTAB)) end--;
  return buf.toString('latin1', start, end);
}

/**
 * Reads the request head at the start of `buf`: the head when it is complete and in the subset, NEED_MORE when what
 * is there so far could still become one, HAND_OVER as soon as it cannot.
 */
export function parseFrontHead(buf: Buffer): FrontHead | typeof NEED_MORE | typeof HAND_OVER {
  const length = buf.length;
  const prefix = matchesAt(buf, 0, REQUEST_PREFIX);
  if (prefix < 0) return HAND_OVER;
  if (prefix === 0) return NEED_MORE;
  let i = REQUEST_PREFIX.length;
  while (i < length && TARGET[buf[i]!] === 1) i++;
  if (i === length) return i > FRONT_MAX_HEAD ? HAND_OVER : NEED_MORE;
  const url = buf.toString('latin1', REQUEST_PREFIX.length - 1, i);
  const version = matchesAt(buf, i, VERSION_SUFFIX);
  if (version < 0) return HAND_OVER;
  if (version === 0) return NEED_MORE;
  i += VERSION_SUFFIX.length;
  let contentType: string | undefined;
  let contentLength = -1;
  let hosts = 0;
  let close = false;
  let connections = 0;
  for (let lines = 0; ; lines++) {
    if (i > FRONT_MAX_HEAD || lines > FRONT_MAX_HEADERS) return HAND_OVER;
    if (i >= length) return NEED_MORE;
    if (buf[i] === CR) {
      // The empty line ending the head.
      if (i + 1 >= length) return NEED_MORE;
      if (buf[i + 1] !== LF) return HAND_OVER;
      if (hosts !== 1 || contentLength < 0) return HAND_OVER;
      return { url, contentType, contentLength, close, bodyStart: i + 2 };
    }
    const nameStart = i;
    while (i < length && TCHAR[buf[i]!] === 1) i++;
    if (i === length) return i > FRONT_MAX_HEAD ? HAND_OVER : NEED_MORE;
    if (buf[i] !== 0x3a || i === nameStart) return HAND_OVER; // ':' after a non-empty name (no obs-fold, no space)
    const nameEnd = i++;
    const valueStart = i;
    while (i < length && fieldByte(buf[i]!)) i++;
    if (i === length) return i > FRONT_MAX_HEAD ? HAND_OVER : NEED_MORE;
    if (buf[i] !== CR) return HAND_OVER;
    if (i + 1 >= length) return NEED_MORE;
    if (buf[i + 1] !== LF) return HAND_OVER;
    const valueEnd = i;
    i += 2;
    const nameLength = nameEnd - nameStart;
    // Only names that decide the framing or the route are read; others are carried (node:http ignores them too).
    if (nameLength !== 4 && nameLength !== 6 && nameLength !== 7 && nameLength !== 10 && nameLength !== 12 && nameLength !== 14 && nameLength !== 16 && nameLength !== 17) continue;
    const name = buf.toString('latin1', nameStart, nameEnd).toLowerCase();
    switch (name) {
      case 'host':
        hosts++;
        break;
      case 'content-length': {
        if (contentLength >= 0) return HAND_OVER;
        // llhttp takes SP or HTAB before the digits but only SP after them (a tab after them is its 400).
        const value = /^[ \t]*([0-9]{1,15}) *$/.exec(buf.toString('latin1', valueStart, valueEnd));
        if (value === null) return HAND_OVER;
        contentLength = Number(value[1]);
        break;
      }
      case 'content-type':
        if (contentType !== undefined) return HAND_OVER;
        contentType = trimmedValue(buf, valueStart, valueEnd);
        break;
      case 'connection': {
        if (++connections > 1) return HAND_OVER;
        // llhttp reads `close` followed by a tab as another token (the connection stays open): whitespace after the
        // value is node's to judge.
        const last = buf[valueEnd - 1];
        if (last === SP || last === HTAB) return HAND_OVER;
        const value = trimmedValue(buf, valueStart, valueEnd).toLowerCase();
        if (value === 'close') close = true;
        else if (value !== 'keep-alive') return HAND_OVER;
        break;
      }
      // llhttp reads Proxy-Connection as Connection.
      case 'proxy-connection':
      case 'transfer-encoding':
      case 'expect':
      case 'upgrade':
        return HAND_OVER;
    }
  }
}
