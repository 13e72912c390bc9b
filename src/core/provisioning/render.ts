/**
 * The JSON provisioning reply (spec §5.1), byte-identical on every transport. Keys keep ThingsBoard's order;
 * fleetgate's additions (`reason`, `deviceId`, `deviceName`, DESIGN 2) come after `status`.
 */
import type { ProvisionReason, ProvisionResult } from '../api.ts';

/** spec §5.1 errorMsg texts. */
export const PROVISION_ERROR_MESSAGES = {
  NOT_FOUND: 'Provision data was not found!',
  FAILURE: 'Failed to provision device!',
} as const;

export function notFound(reason: ProvisionReason): ProvisionResult {
  return { status: 'NOT_FOUND', reason, errorMsg: PROVISION_ERROR_MESSAGES.NOT_FOUND };
}

export function failure(reason: ProvisionReason): ProvisionResult {
  return { status: 'FAILURE', reason, errorMsg: PROVISION_ERROR_MESSAGES.FAILURE };
}

/** Renders a result as the §5.1 JSON body. */
export function renderProvisionJson(result: ProvisionResult): string {
  if (result.status !== 'SUCCESS') {
    return JSON.stringify({ errorMsg: result.errorMsg, status: result.status, reason: result.reason });
  }
  const body: Record<string, unknown> = {};
  if (result.credentialsValue !== undefined) body.credentialsValue = result.credentialsValue;
  body.credentialsType = result.credentialsType;
  body.status = 'SUCCESS';
  body.deviceId = result.deviceId;
  body.deviceName = result.deviceName;
  return JSON.stringify(body);
}
