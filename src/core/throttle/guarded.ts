/**
 * Decorators that put the {@link Throttle} in front of provisioning and device authentication, so every transport gets
 * the same decision from core (DESIGN "Rules of the house"). A blocked request is answered at once, without touching
 * the database (DESIGN 6, issue 7 §1).
 */
import type { DeviceAuthApi, DeviceIdentity, DeviceTransport, ProvisionReason, ProvisionResult, ProvisioningApi, RequestSource, TelemetryApi, UsersApi } from '../api.ts';
import { FleetgateError } from '../errors.ts';
import { PROVISION_ERROR_MESSAGES } from '../provisioning/render.ts';
import { retryAfterSeconds, type Throttle } from './throttle.ts';

/**
 * Outcomes that count as a failed attempt: what someone guessing a provision key, a secret or a pre-provisioned
 * device's name sees. DEVICE_EXISTS, EMPTY_NAME and credential problems are a device's own mistakes, not guesses.
 */
export const COUNTED_PROVISION_REASONS: ReadonlySet<ProvisionReason> = new Set<ProvisionReason>([
  'BAD_KEY_OR_SECRET',
  'PROVISIONING_DISABLED',
  'NOT_PRE_PROVISIONED',
  'ALREADY_PROVISIONED',
]);

/**
 * The answer to a throttled provisioning request. `status` FAILURE with ThingsBoard's FAILURE text, so the body stays
 * ThingsBoard-valid (spec §5.1) without claiming that the key was wrong (NOT_FOUND would tell a legitimate device its
 * key or secret is bad); `reason` RATE_LIMITED says why (DESIGN 2, 6).
 */
export function rateLimitedResult(blockedMs: number): ProvisionResult {
  return { status: 'FAILURE', reason: 'RATE_LIMITED', errorMsg: PROVISION_ERROR_MESSAGES.FAILURE, retryAfterSeconds: retryAfterSeconds(blockedMs) };
}

/** Provisioning behind the throttle: blocked sources and keys get RATE_LIMITED; counted failures are recorded. */
export function throttledProvisioning(inner: ProvisioningApi, throttle: Throttle): ProvisioningApi {
  return {
    async provision(request, source) {
      const key = request.provisionDeviceKey || undefined;
      const address = throttle.sourceKey(source.address);
      const blocked = Math.max(throttle.provisionBySource.blockedMs(address), throttle.provisionByKey.blockedMs(key));
      if (blocked > 0) return rateLimitedResult(blocked);
      const result = await inner.provision(request, source);
      if (result.status !== 'SUCCESS' && COUNTED_PROVISION_REASONS.has(result.reason)) {
        await Promise.all([throttle.provisionBySource.failed(address), throttle.provisionByKey.failed(key)]);
      }
      return result;
    },
  };
}

/** The error a blocked device authentication throws: HTTP 429 + Retry-After, CoAP 4.29, CONNACK 0x97 (v5) / 5 (v3). */
export function authRateLimited(blockedMs: number): FleetgateError {
  return new FleetgateError('AUTH_RATE_LIMITED', 'Too many failed authentication attempts from this address', { retryAfterSeconds: retryAfterSeconds(blockedMs) });
}

/** Errors of byMqttCredentials that mean "wrong credentials" (spec §8.1 table), as opposed to a server problem. */
const CREDENTIAL_FAILURES = new Set(['UNAUTHORIZED', 'BAD_USERNAME_OR_PASSWORD', 'CLIENT_ID_REJECTED']);

/** Device authentication behind the throttle, per source address. Without a source nothing is throttled. */
export class ThrottledDeviceAuth implements DeviceAuthApi {
  constructor(
    private readonly inner: DeviceAuthApi,
    private readonly throttle: Throttle,
  ) {}

  private check(source: RequestSource | undefined): void {
    const blocked = this.throttle.authBySource.blockedMs(this.throttle.sourceKey(source?.address));
    if (blocked > 0) throw authRateLimited(blocked);
  }

  private async counted(identity: DeviceIdentity | undefined, source: RequestSource | undefined): Promise<DeviceIdentity | undefined> {
    if (identity === undefined) await this.throttle.authBySource.failed(this.throttle.sourceKey(source?.address));
    return identity;
  }

  async byAccessToken(token: string, transport?: DeviceTransport, source?: RequestSource): Promise<DeviceIdentity | undefined> {
    this.check(source);
    return this.counted(await this.inner.byAccessToken(token, transport), source);
  }

  async byX509Hash(hash: string, transport?: DeviceTransport, source?: RequestSource): Promise<DeviceIdentity | undefined> {
    this.check(source);
    return this.counted(await this.inner.byX509Hash(hash, transport), source);
  }

  async byMqttCredentials(clientId: string, username: string | undefined, password: Buffer | string | undefined, source?: RequestSource): Promise<DeviceIdentity> {
    this.check(source);
    try {
      return await this.inner.byMqttCredentials(clientId, username, password);
    } catch (err) {
      if (err instanceof FleetgateError && CREDENTIAL_FAILURES.has(err.code)) await this.throttle.authBySource.failed(this.throttle.sourceKey(source?.address));
      throw err;
    }
  }
}

/**
 * Telemetry and client attributes behind the per-device message rate: past it, RATE_LIMITED naming the limit
 * (MQTT 5 PUBACK 0x97, MQTT 3.x connection closed, HTTP 429 + Retry-After, CoAP 4.29 + Max-Age). Nothing is stored.
 */
export function rateLimitedTelemetry(inner: TelemetryApi, throttle: Throttle): TelemetryApi {
  if (!throttle.deviceMessages.enabled) return inner;
  // Plain functions returning the inner promise: no extra promise per message on the telemetry hot path.
  const refusal = (wait: number) =>
    Promise.reject(new FleetgateError('RATE_LIMITED', `Device message rate limit exceeded (${throttle.limits.deviceMessageRate})`, { retryAfterSeconds: retryAfterSeconds(wait) }));
  return {
    ingestJson(device, json) {
      const wait = throttle.deviceMessages.take(device.deviceId);
      return wait > 0 ? refusal(wait) : inner.ingestJson(device, json);
    },
    ingestJsonTo: inner.ingestJsonTo
      ? (device, json, listener, start, end) => {
          const wait = throttle.deviceMessages.take(device.deviceId);
          if (wait > 0) refusal(wait).catch((err: unknown) => listener.failed(err));
          else inner.ingestJsonTo!(device, json, listener, start, end);
        }
      : undefined,
    saveClientAttributesJson(device, json) {
      const wait = throttle.deviceMessages.take(device.deviceId);
      return wait > 0 ? refusal(wait) : inner.saveClientAttributesJson(device, json);
    },
  };
}

/** Administrator logins behind the same per-address failure guard as device authentication (password guessing). */
export function throttledUsers(inner: UsersApi, throttle: Throttle): UsersApi {
  return {
    async verify(email, password, source) {
      const address = throttle.sourceKey(source?.address);
      const blocked = throttle.authBySource.blockedMs(address);
      if (blocked > 0) throw authRateLimited(blocked);
      const user = await inner.verify(email, password);
      if (!user && source) await throttle.authBySource.failed(address);
      return user;
    },
    get: (id) => inner.get(id),
    ensureAdmin: (email, password) => inner.ensureAdmin(email, password),
    setPassword: (email, password) => inner.setPassword(email, password),
  };
}
