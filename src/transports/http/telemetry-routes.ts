/**
 * Device -> server data (spec §8.3): telemetry, client attributes, and the attribute read.
 */
import type { FastifyInstance } from 'fastify';
import type { DeviceRouteDeps } from './device-api.ts';
import { authenticate, jsonText, keyList, requiredBody, type TokenParams } from './device-request.ts';

interface AttributeQuery {
  clientKeys?: string | string[];
  sharedKeys?: string | string[];
}

/** Registers `POST /{token}/telemetry`, `POST /{token}/attributes` and `GET /{token}/attributes`. */
export function registerTelemetryRoutes(api: FastifyInstance, { core }: DeviceRouteDeps): void {
  // spec §8.3: every JSON form of §8.2; 200 with an empty body once the data is committed (DESIGN "Data flow").
  api.post<{ Params: TokenParams }>('/:token/telemetry', async (request, reply) => {
    const device = await authenticate(core, request.params.token, request.ip, request.raw.socket);
    await core.telemetry.ingestJson(device, requiredBody(request));
    return reply.code(200).send();
  });

  api.post<{ Params: TokenParams }>('/:token/attributes', async (request, reply) => {
    const device = await authenticate(core, request.params.token, request.ip, request.raw.socket);
    await core.telemetry.saveClientAttributesJson(device, requiredBody(request));
    return reply.code(200).send();
  });

  // spec §8.3: 200 {"client":{..},"shared":{..}}, empty parts omitted, {} when none.
  api.get<{ Params: TokenParams; Querystring: AttributeQuery }>('/:token/attributes', async (request, reply) => {
    const device = await authenticate(core, request.params.token, request.ip, request.raw.socket);
    // spec §8.2: no list at all -> every client and shared attribute; otherwise only the scopes asked for (core
    // reads an undefined list as "not asked" unless both are undefined).
    const view = await core.attributes.getForDevice(device.deviceId, keyList(request.query.clientKeys), keyList(request.query.sharedKeys));
    return reply.code(200).header('content-type', 'application/json').send(jsonText(view));
  });
}
