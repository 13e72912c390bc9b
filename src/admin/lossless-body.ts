/**
 * JSON bodies parsed with lossless-json, for routes whose values are stored with ThingsBoard's typing:
 * `1.0` stays a double and 64-bit integers keep every digit (JSON.parse would turn both into a JS number).
 * Core's typed-value rules (src/core/kv-json.ts) read the LosslessNumber tokens.
 */
import type { FastifyInstance } from 'fastify';
import { isLosslessNumber, parse as parseLossless } from 'lossless-json';
import { FleetgateError } from '../core/errors.ts';
import { withHttpStatus } from './error-mapping.ts';

/** Replaces the `application/json` parser of this (encapsulated) context with a lossless one. */
export function useLosslessJsonBodies(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseLossless(body as string));
    } catch (err) {
      done(withHttpStatus(new FleetgateError('MALFORMED_PAYLOAD', `Invalid request body: ${(err as Error).message}`)), undefined);
    }
  });
}

/** True for a JSON object body (a bare number parses to a LosslessNumber, which is an object too). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !isLosslessNumber(value);
}
