/** Small builders and readers shared by tests across transports. */
import type { ProfileInput } from '../../src/core/api.ts';
import type { ProvisionType } from '../../src/core/model.ts';

/** A device profile input with provisioning configured the way ThingsBoard's UI saves it (spec §3.2). */
export function provisioningProfileInput(
  name: string,
  type: ProvisionType,
  key: string | null,
  secret: string | null,
  transportType = 'DEFAULT',
): ProfileInput {
  return {
    name,
    type: 'DEFAULT',
    transportType,
    provisionType: type,
    provisionDeviceKey: key,
    profileData: {
      configuration: { type: 'DEFAULT' },
      transportConfiguration: { type: transportType },
      provisionConfiguration: { type, provisionDeviceSecret: secret },
    },
  };
}

/** A response read to the end: status, headers, text, and the JSON it holds (undefined when empty or not JSON). */
export async function readResponse(res: Response): Promise<{ status: number; headers: Headers; text: string; json: unknown }> {
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}
