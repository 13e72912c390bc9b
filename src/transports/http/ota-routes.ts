/**
 * Firmware and software download over HTTP (spec thingsboard-ota §4.2): `GET /api/v1/{token}/firmware` and
 * `/software` with `title`, `version`, `size`, `chunk`. The slice is streamed from storage piece by piece.
 */
import type { FastifyInstance } from 'fastify';
import { Readable } from 'node:stream';
import { FleetgateError } from '../../core/errors.ts';
import type { OtaType } from '../../core/ota/model.ts';
import type { DeviceRouteDeps } from './device-api.ts';
import { authenticate, type TokenParams } from './device-request.ts';

interface OtaQuery {
  title?: string;
  version?: string;
  size?: string;
  chunk?: string;
}

/** A whole-number query parameter, `fallback` when absent; anything else -> 400 (TB binds an `int`). */
function wholeNumber(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  if (!/^-?\d{1,15}$/.test(value)) throw new FleetgateError('INVALID_ARGUMENT', `Invalid ${name}: a whole number is expected, got "${value}"`);
  return Number(value);
}

/** Registers the two download routes. */
export function registerOtaRoutes(api: FastifyInstance, { core }: DeviceRouteDeps): void {
  for (const [path, type] of [['firmware', 'FIRMWARE'], ['software', 'SOFTWARE']] as const) {
    api.get<{ Params: TokenParams; Querystring: OtaQuery }>(`/:token/${path}`, async (request, reply) => {
      const { title, version } = request.query;
      if (title === undefined || version === undefined) throw new FleetgateError('INVALID_ARGUMENT', "Required request parameters 'title' and 'version' are not present");
      const size = wholeNumber(request.query.size, 'size', 0);
      const chunk = wholeNumber(request.query.chunk, 'chunk', 0);
      if (chunk < 0) throw new FleetgateError('INVALID_ARGUMENT', `Invalid chunk: ${chunk} is negative`); // TB: undefined (§4.0)
      const device = await authenticate(core, request.params.token, request.ip);
      const found = await core.ota.lookup(device.deviceId, type as OtaType);
      // TB: status other than SUCCESS -> 404 (unassigned, URL package, device gone).
      if (found.status !== 'SUCCESS') throw new FleetgateError('NOT_FOUND', `No ${path} package available for this device (${found.status})`);
      const pkg = found.pkg;
      // TB: title and version must equal the assigned package's exactly -> else 400.
      if (pkg.title !== title || pkg.version !== version) throw new FleetgateError('INVALID_ARGUMENT', `The assigned ${path} package is not ${title} ${version}`);
      const [start, end] = core.ota.slice(pkg, size, chunk);
      const name = pkg.fileName ?? pkg.id;
      reply
        .code(200)
        .header('content-disposition', `attachment;filename=${name}`)
        .header('x-filename', name)
        .header('content-length', String(end - start))
        .header('content-type', pkg.contentType && /^[\w.+-]+\/[\w.+-]+/.test(pkg.contentType) ? pkg.contentType : 'application/octet-stream');
      if (end === start) return reply.send(Buffer.alloc(0)); // past the end: 200, empty (the SDK relies on it)
      if (end - start <= 1024 * 1024) return reply.send(await core.ota.readRange(pkg, start, end));
      return reply.send(Readable.from(core.ota.readStream(pkg, start, end), { objectMode: false }));
    });
  }
}
