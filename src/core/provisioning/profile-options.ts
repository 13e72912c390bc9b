/**
 * fleetgate's own provisioning options of a device profile. They live beside ThingsBoard's fields in
 * `profileData.provisionConfiguration` (spec §3.2: unknown properties are ignored there, so a ThingsBoard client that
 * reads or writes the profile keeps working) and are checked when a profile is saved.
 */
import { FleetgateError } from '../errors.ts';
import type { ProvisionConfiguration } from '../model.ts';

/** `secretDerivation`: how the secret a device sends relates to the profile's `provisionDeviceSecret`. */
export type SecretDerivation = 'NONE' | 'HMAC_SHA256';

/** `reprovisionPolicy`: what a repeat request for an existing device that has already connected gets (as DPS). */
export type ReprovisionPolicy = 'NEVER' | 'SAME_CREDENTIALS' | 'NEW_CREDENTIALS';

/** `preProvisioningHook`: a webhook asked before a SUCCESS is written. */
export interface PreProvisioningHookOptions {
  /** http:// or https:// URL that receives the POST. */
  url: string;
  /** Key of the HMAC-SHA256 signature header (`X-Fleetgate-Signature`). */
  secret: string;
  /** How long the hook has to answer, ms (default 2000). */
  timeoutMs: number;
  /** When the hook cannot be asked or answers garbage: true provisions anyway, false answers HOOK_UNAVAILABLE. */
  failOpen: boolean;
}

export interface ProvisioningOptions {
  secretDerivation: SecretDerivation;
  reprovisionPolicy: ReprovisionPolicy;
  hook: PreProvisioningHookOptions | undefined;
}

export const DEFAULT_HOOK_TIMEOUT_MS = 2000;
const MAX_HOOK_TIMEOUT_MS = 30_000;
const DERIVATIONS: readonly SecretDerivation[] = ['NONE', 'HMAC_SHA256'];
const POLICIES: readonly ReprovisionPolicy[] = ['NEVER', 'SAME_CREDENTIALS', 'NEW_CREDENTIALS'];

const invalid = (message: string) => new FleetgateError('INVALID_ARGUMENT', message);

function oneOf<T extends string>(value: unknown, allowed: readonly T[], field: string, fallback: T): T {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'string' || !allowed.includes(value as T)) throw invalid(`provisionConfiguration.${field} must be one of ${allowed.join(', ')}`);
  return value as T;
}

function hookOptions(raw: unknown): PreProvisioningHookOptions | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalid('provisionConfiguration.preProvisioningHook must be an object');
  const h = raw as Record<string, unknown>;
  if (typeof h.url !== 'string') throw invalid('provisionConfiguration.preProvisioningHook.url must be an http:// or https:// URL');
  let url: URL;
  try {
    url = new URL(h.url);
  } catch {
    throw invalid('provisionConfiguration.preProvisioningHook.url must be an http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('provisionConfiguration.preProvisioningHook.url must be an http:// or https:// URL');
  if (typeof h.secret !== 'string' || h.secret.length < 16) throw invalid('provisionConfiguration.preProvisioningHook.secret must be a string of at least 16 characters');
  const timeoutMs = h.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_HOOK_TIMEOUT_MS) {
    throw invalid(`provisionConfiguration.preProvisioningHook.timeoutMs must be a whole number from 1 to ${MAX_HOOK_TIMEOUT_MS}`);
  }
  const failOpen = h.failOpen ?? false;
  if (typeof failOpen !== 'boolean') throw invalid('provisionConfiguration.preProvisioningHook.failOpen must be true or false');
  return { url: h.url, secret: h.secret, timeoutMs, failOpen };
}

/** The options of a provision configuration; throws INVALID_ARGUMENT naming the field when one is wrong. */
export function provisioningOptions(config: ProvisionConfiguration | null | undefined): ProvisioningOptions {
  return {
    secretDerivation: oneOf(config?.secretDerivation, DERIVATIONS, 'secretDerivation', 'NONE'),
    reprovisionPolicy: oneOf(config?.reprovisionPolicy, POLICIES, 'reprovisionPolicy', 'NEVER'),
    hook: hookOptions(config?.preProvisioningHook),
  };
}
