/**
 * Admin routes of fleetgate's provisioning options (README "Provisioning that one leaked device cannot break"):
 * - GET /api/deviceProfile/{id}/derivedSecret?deviceName=  the provisioning secret of one device of a profile with
 *   `secretDerivation: HMAC_SHA256`, for the factory: `{"deviceName":..,"provisionDeviceSecret":..}`. Audited
 *   (DERIVED_SECRET_READ, without the secret).
 * - POST /api/deviceProfile/{id}/requireCredentialsRotation  sets the shared attribute `credentialsRotationRequired`
 *   on every device of the profile (pushed to connected devices); answers `{"devices": n}`. Audited.
 */
import type { FastifyInstance } from 'fastify';
import { derivedSecretFor } from '../core/provisioning/derived-secret.ts';
import { actorOf, principalOf, type AdminDeps } from './context.ts';
import { SECURED, uuidParams } from './schemas.ts';

type DerivedSecretRequest = { Params: { deviceProfileId: string }; Querystring: { deviceName: string } };

/** Registers the routes (authenticated). */
export function registerProvisioningSecurityRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get<DerivedSecretRequest>(
    '/api/deviceProfile/:deviceProfileId/derivedSecret',
    {
      schema: {
        tags: ['device profiles'],
        summary: "A device's provisioning secret under secretDerivation HMAC_SHA256: base64(HMAC-SHA256(profile secret, deviceName))",
        security: SECURED,
        params: uuidParams('deviceProfileId'),
        querystring: { type: 'object', required: ['deviceName'], properties: { deviceName: { type: 'string', minLength: 1, maxLength: 255 } } },
      },
    },
    async (req) => {
      const { tenantId } = principalOf(req);
      const profile = await deps.core.profiles.get(tenantId, req.params.deviceProfileId);
      const deviceName = req.query.deviceName.trim();
      const provisionDeviceSecret = derivedSecretFor(profile, deviceName);
      await deps.core.audit.record({
        tenantId,
        entityType: 'DEVICE_PROFILE',
        entityId: profile.id,
        entityName: profile.name,
        userId: actorOf(req).userId,
        userName: actorOf(req).userName,
        actionType: 'DERIVED_SECRET_READ',
        actionData: { deviceName },
        actionStatus: 'SUCCESS',
        actionFailureDetails: null,
        source: `admin:${req.ip}`,
      });
      return { deviceName, provisionDeviceSecret };
    },
  );

  app.post<{ Params: { deviceProfileId: string } }>(
    '/api/deviceProfile/:deviceProfileId/requireCredentialsRotation',
    {
      schema: {
        tags: ['device profiles'],
        summary: 'Ask every device of the profile to rotate its credentials (shared attribute credentialsRotationRequired: true)',
        security: SECURED,
        params: uuidParams('deviceProfileId'),
      },
    },
    async (req) => {
      const { tenantId } = principalOf(req);
      const profile = await deps.core.profiles.get(tenantId, req.params.deviceProfileId);
      return deps.core.rotation.requireRotation(tenantId, profile.id, actorOf(req));
    },
  );
}
