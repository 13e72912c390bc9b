/**
 * Firmware and software download over CoAP (spec thingsboard-ota §4.3; ThingsBoard's code, not its docs):
 * `GET coap://host/fw/{token}?title=&version=&size=&chunk=` and `/sw/{token}`, root resources. The slice is sent with
 * plain RFC 7959 Block2 (at most 1024 bytes a block): each block request reads only its bytes from storage, so no
 * package or slice is ever buffered. Answered by the transport itself (never node-coap's Block2 cache).
 */
import type { Core } from '../../core/core-types.ts';
import type { OtaType } from '../../core/ota/model.ts';
import { blockValue } from './notify-blocks.ts';
import { codeReply, diagnosticReply, methodNotAllowed } from './replies.ts';
import { CONTENT_FORMAT, uintBuffer, type CoapReply } from './wire.ts';

/** Largest block served (Californium's PREFERRED_BLOCK_SIZE / MAX_MESSAGE_SIZE in ThingsBoard: 1024). */
const MAX_BLOCK = 1024;

/** True for the OTA resources `/fw/...` and `/sw/...`. */
export const isOtaPath = (segments: readonly string[]): boolean => segments[0] === 'fw' || segments[0] === 'sw';

export interface OtaRequest {
  method: string;
  segments: readonly string[];
  query: ReadonlyMap<string, string>;
  /** The request's Block2 option, if any. */
  block2?: { num: number; size: number };
  address: string;
}

function whole(query: ReadonlyMap<string, string>, name: string): number | string {
  const raw = query.get(name);
  if (raw === undefined || raw === '') return 0;
  if (!/^\d{1,15}$/.test(raw)) return `Invalid ${name}: a whole number is expected, got "${raw}"`;
  return Number(raw);
}

/** Answers one OTA request (a whole slice, or one block of it). */
export async function otaReply(core: Core, req: OtaRequest): Promise<CoapReply> {
  // TB: the URI path must be exactly 2 segments, else 4.01.
  if (req.segments.length !== 2) return codeReply('UNAUTHORIZED', 'Path must be /fw/{accessToken} or /sw/{accessToken}');
  if (req.method !== 'GET') return methodNotAllowed(req.method, `/${req.segments[0]}/{token}`);
  const device = await core.auth.byAccessToken(req.segments[1], undefined, { transport: 'coap', address: req.address });
  if (!device) return codeReply('UNAUTHORIZED', 'Invalid access token');
  const type: OtaType = req.segments[0] === 'fw' ? 'FIRMWARE' : 'SOFTWARE';
  const size = whole(req.query, 'size');
  const chunk = whole(req.query, 'chunk');
  // TB gives no response at all here; fleetgate says what was wrong.
  if (typeof size === 'string') return diagnosticReply('4.00', size);
  if (typeof chunk === 'string') return diagnosticReply('4.00', chunk);
  const found = await core.ota.lookup(device.deviceId, type);
  if (found.status !== 'SUCCESS') return codeReply('NOT_FOUND', `No package available for this device (${found.status})`); // TB: 4.04
  const pkg = found.pkg;
  const title = req.query.get('title');
  const version = req.query.get('version');
  // TB: title and version are optional on CoAP; when given they must match, else 4.00.
  if ((title !== undefined && title !== pkg.title) || (version !== undefined && version !== pkg.version)) {
    return diagnosticReply('4.00', 'title or version does not match the assigned package');
  }
  const [start, end] = core.ota.slice(pkg, size, chunk);
  const length = end - start;
  // TB sends no response past the end (the client times out); fleetgate answers 4.00.
  if (length === 0) return diagnosticReply('4.00', `Chunk ${chunk} of size ${size} is past the end of the package (${pkg.dataSize} bytes)`);
  if (!req.block2 && length <= MAX_BLOCK) return { code: '2.05', payload: await core.ota.readRange(pkg, start, end), format: CONTENT_FORMAT.octetStream };
  // RFC 7959 §2.2: the server may use a smaller block than asked for, never a larger one.
  const blockSize = Math.min(req.block2?.size ?? MAX_BLOCK, MAX_BLOCK);
  const num = req.block2?.num ?? 0;
  const from = num * blockSize;
  if (from >= length) return diagnosticReply('4.02', 'Block2 is past the end of the representation');
  const until = Math.min(length, from + blockSize);
  const payload = await core.ota.readRange(pkg, start + from, start + until);
  return {
    code: '2.05',
    payload,
    format: CONTENT_FORMAT.octetStream,
    options: [
      { name: 'Block2', value: blockValue(num, until < length, blockSize) },
      { name: 'Size2', value: uintBuffer(length) },
      { name: 'ETag', value: Buffer.from((pkg.checksum ?? pkg.id.replace(/-/g, '')).slice(0, 16), 'hex') },
    ],
  };
}
