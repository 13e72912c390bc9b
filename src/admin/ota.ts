/**
 * OTA package routes, ThingsBoard's OtaPackageController shapes (spec thingsboard-ota §1.2 R1-R9), plus fleetgate's
 * rollout summary GET /api/otaPackage/{id}/rollout (docs/ota.md). Uploads are multipart (@fastify/multipart) and
 * streamed into storage; downloads stream from storage.
 */
import multipart from '@fastify/multipart';
import type { FastifyInstance } from 'fastify';
import { Readable } from 'node:stream';
import { badRequest, FleetgateError } from '../core/errors.ts';
import { OTA_TYPES, type OtaType } from '../core/ota/model.ts';
import { actorOf, principalOf, type AdminDeps } from './context.ts';
import { pageJson } from './json-shapes.ts';
import { otaPackageInput, otaPageQuery } from './ota-input.ts';
import { otaPackageInfoJson, otaPackageJson, rolloutSummaryJson } from './ota-json.ts';
import { OBJECT_BODY, SECURED, paramsWith, uuidParams } from './schemas.ts';

/** GET /api/otaPackage/{id} inlines the bytes as Base64; beyond this (ThingsBoard's 16 MiB upload cap) use /download. */
const MAX_INLINE_BYTES = 16 * 1024 * 1024;
const TAGS = ['ota packages'];

type IdParams = { Params: { otaPackageId: string } };
type Query = Record<string, string | undefined>;

function otaType(text: string): OtaType {
  if (!(OTA_TYPES as readonly string[]).includes(text)) throw badRequest(`No enum constant org.thingsboard.server.common.data.ota.OtaPackageType.${text}`);
  return text as OtaType;
}

/** Registers the OTA routes (in their own context, for the multipart parser). */
export async function registerOtaRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  const { ota } = deps.core;
  await app.register(multipart, { limits: { files: 1, fileSize: deps.config.otaMaxPackageBytes + 1, fields: 10, parts: 20 } });

  app.post<{ Body: Record<string, unknown> }>(
    '/api/otaPackage',
    { schema: { tags: TAGS, summary: 'Create or update OTA package metadata (saveOtaPackageInfo)', security: SECURED, body: { ...OBJECT_BODY, description: 'SaveOtaPackageInfoRequest: title, version, type FIRMWARE|SOFTWARE, deviceProfileId, tag, url, usesUrl' } } },
    async (req) => {
      const saved = await ota.savePackage(principalOf(req).tenantId, otaPackageInput(req.body ?? {}), actorOf(req));
      return otaPackageInfoJson(saved, req.body?.id ? undefined : false); // TB: hasData false on create (spec §7.2)
    },
  );

  app.post<IdParams & { Querystring: Query }>(
    '/api/otaPackage/:otaPackageId',
    {
      schema: {
        tags: TAGS,
        summary: 'Upload the package file: multipart part `file` (saveOtaPackageData); checksum computed when absent, verified when given',
        security: SECURED,
        params: uuidParams('otaPackageId'),
        querystring: { type: 'object', properties: { checksumAlgorithm: { type: 'string' }, checksum: { type: 'string' } } },
      },
    },
    async (req) => {
      const tenantId = principalOf(req).tenantId;
      if (!req.query.checksumAlgorithm || req.query.checksumAlgorithm.trim() === '') throw badRequest("Parameter 'checksumAlgorithm' can't be empty!");
      await ota.getPackage(tenantId, req.params.otaPackageId); // 404/403 before the body is read
      if (!req.isMultipart()) throw new FleetgateError('UNSUPPORTED_MEDIA_TYPE', "Content-Type must be multipart/form-data with a part 'file'");
      const part = await req.file();
      if (!part || part.fieldname !== 'file') throw badRequest("Required part 'file' is not present.");
      const saved = await ota.uploadPackage(
        tenantId,
        req.params.otaPackageId,
        { checksumAlgorithm: req.query.checksumAlgorithm, checksum: req.query.checksum || undefined, fileName: part.filename, contentType: part.mimetype, data: part.file },
        actorOf(req),
      );
      return otaPackageInfoJson(saved);
    },
  );

  app.get<IdParams>(
    '/api/otaPackage/info/:otaPackageId',
    { schema: { tags: TAGS, summary: 'Package metadata (getOtaPackageInfoById)', security: SECURED, params: uuidParams('otaPackageId') } },
    async (req) => otaPackageInfoJson(await ota.getPackageInfo(principalOf(req).tenantId, req.params.otaPackageId)),
  );

  app.get<IdParams>(
    '/api/otaPackage/:otaPackageId',
    { schema: { tags: TAGS, summary: 'Package with its bytes in Base64 (getOtaPackageById); up to 16 MiB, else use /download', security: SECURED, params: uuidParams('otaPackageId') } },
    async (req) => {
      const pkg = await ota.getPackage(principalOf(req).tenantId, req.params.otaPackageId);
      if (pkg.blobId === null) return otaPackageJson(pkg, null);
      if ((pkg.dataSize ?? 0) > MAX_INLINE_BYTES) throw new FleetgateError('PAYLOAD_TOO_LARGE', `Package of ${pkg.dataSize} bytes is too large to inline (limit ${MAX_INLINE_BYTES}); use GET /api/otaPackage/${pkg.id}/download`);
      return otaPackageJson(pkg, await ota.readRange(pkg, 0, pkg.dataSize ?? 0));
    },
  );

  app.get<IdParams>(
    '/api/otaPackage/:otaPackageId/download',
    { schema: { tags: TAGS, summary: 'The package file, streamed (downloadOtaPackage)', security: SECURED, params: uuidParams('otaPackageId') } },
    async (req, reply) => {
      const pkg = await ota.getPackage(principalOf(req).tenantId, req.params.otaPackageId);
      // TB: a URL package -> 400 with an empty body; one without bytes: a clear 404 instead of TB's 500.
      if (pkg.blobId === null && pkg.url !== null) return reply.code(400).send();
      if (pkg.blobId === null) throw new FleetgateError('NOT_FOUND', 'Ota package has no data');
      const name = pkg.fileName ?? pkg.id;
      reply
        .header('content-disposition', `attachment;filename=${name}`)
        .header('x-filename', name)
        .header('content-length', String(pkg.dataSize))
        .header('content-type', pkg.contentType && /^[\w.+-]+\/[\w.+-]+/.test(pkg.contentType) ? pkg.contentType : 'application/octet-stream');
      return reply.send(Readable.from(ota.readPackage(pkg), { objectMode: false }));
    },
  );

  app.get<IdParams & { Querystring: { deviceProfileId?: string } }>(
    '/api/otaPackage/:otaPackageId/rollout',
    {
      schema: {
        tags: TAGS,
        summary: "Rollout summary (fleetgate): devices of the profile (default: the package's) whose effective package it is, per reported fw_state/sw_state, the FAILED ones with fw_error",
        security: SECURED,
        params: uuidParams('otaPackageId'),
        querystring: { type: 'object', properties: { deviceProfileId: { type: 'string', format: 'uuid' } } },
      },
    },
    async (req) => rolloutSummaryJson(await ota.rolloutSummary(principalOf(req).tenantId, req.params.otaPackageId, req.query.deviceProfileId)),
  );

  app.delete<IdParams>(
    '/api/otaPackage/:otaPackageId',
    { schema: { tags: TAGS, summary: 'Delete a package; refused while a device or profile is assigned it (deleteOtaPackage)', security: SECURED, params: uuidParams('otaPackageId') } },
    async (req, reply) => {
      await ota.deletePackage(principalOf(req).tenantId, req.params.otaPackageId, actorOf(req));
      return reply.code(200).send();
    },
  );

  app.get<{ Querystring: Query }>(
    '/api/otaPackages',
    { schema: { tags: TAGS, summary: 'Page of packages (getOtaPackages): pageSize, page, textSearch (title), sortProperty, sortOrder', security: SECURED } },
    async (req) => pageJson(await ota.listPackages(principalOf(req).tenantId, otaPageQuery(req.query)), (p) => otaPackageInfoJson(p)),
  );

  app.get<{ Params: { deviceProfileId: string; type: string }; Querystring: Query }>(
    '/api/otaPackages/:deviceProfileId/:type',
    { schema: { tags: TAGS, summary: 'Page of assignable packages (bytes or URL) of a profile and type (getOtaPackages by profile)', security: SECURED, params: paramsWith('deviceProfileId', 'type') } },
    async (req) => {
      const type = otaType(req.params.type);
      const page = await ota.listPackages(principalOf(req).tenantId, otaPageQuery(req.query), { deviceProfileId: req.params.deviceProfileId, type, assignable: true });
      return pageJson(page, (p) => otaPackageInfoJson(p, true)); // TB R7: hasData always true
    },
  );

  app.get<{ Params: { deviceProfileId: string; otaPackageType: string } }>(
    '/api/devices/count/:otaPackageType/:deviceProfileId',
    { schema: { tags: TAGS, summary: "R9: devices of the profile without their own package of the type (those a profile change reaches)", security: SECURED, params: paramsWith('deviceProfileId', 'otaPackageType') } },
    async (req) => {
      await deps.core.profiles.get(principalOf(req).tenantId, req.params.deviceProfileId);
      return ota.countDevicesFollowingProfile(req.params.deviceProfileId, otaType(req.params.otaPackageType));
    },
  );
}
