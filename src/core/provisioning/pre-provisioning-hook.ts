/**
 * The pre-provisioning hook (profile option `preProvisioningHook`, as AWS IoT's pre-provisioning hook): before a
 * SUCCESS is written, core POSTs the request's facts (never the secret) to the profile's webhook, signed with
 * HMAC-SHA256, and the hook allows (optionally setting the label and initial server/shared attributes) or denies.
 * A hook that cannot be asked, answers late, or answers anything but the documented JSON is "unavailable": the
 * profile's `failOpen` decides. Calls are bounded in number (a semaphore) and reported to the observer (metrics).
 */
import { createHmac } from 'node:crypto';
import type { ProvisionReason, ProvisionRequest, RequestSource } from '../api.ts';
import type { CoreLogger } from '../core-types.ts';
import type { DeviceProfile, KvEntry } from '../model.ts';
import { objectToEntries } from '../kv-json.ts';
import type { HookCaller } from '../ports/hook-caller.ts';
import { provisioningOptions, type PreProvisioningHookOptions } from './profile-options.ts';

/** Header with `sha256=<hex HMAC-SHA256(hook secret, timestamp + "." + body)>`. */
export const SIGNATURE_HEADER = 'x-fleetgate-signature';
/** Header with the signing time, Unix ms (the hook should refuse old ones: replay). */
export const TIMESTAMP_HEADER = 'x-fleetgate-timestamp';
/** Largest answer read from a hook. */
export const MAX_HOOK_ANSWER_BYTES = 64 * 1024;
const MAX_LABEL_LENGTH = 255;
const MAX_ATTRIBUTES = 100;

/** What the hook lets provisioning write besides the device. */
export interface HookGrant {
  label?: string;
  serverAttributes: KvEntry[];
  sharedAttributes: KvEntry[];
}

/** How one hook call ended; `allowed` and `failedOpen` let provisioning go on. */
export type HookOutcome = 'allowed' | 'denied' | 'unavailable' | 'failedOpen';

export type HookDecision =
  | { proceed: true; grant: HookGrant | undefined; outcome: 'allowed' | 'failedOpen' | 'none'; detail?: string }
  | { proceed: false; reason: Extract<ProvisionReason, 'HOOK_DENIED' | 'HOOK_UNAVAILABLE'>; outcome: 'denied' | 'unavailable'; detail: string };

/** The body the hook receives. */
export interface HookRequestBody {
  event: 'PRE_PROVISION';
  deviceName: string;
  deviceProfileId: string;
  deviceProfileName: string;
  provisionType: string;
  transport: RequestSource['transport'];
  sourceAddress: string | null;
  credentialsType: string;
  gateway: boolean;
  timestamp: number;
}

/** The signature value of `body` signed at `timestamp` (what a hook recomputes to check it). */
export function hookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex')}`;
}

/** The hook's answer, or a description of why it is not one. */
function parseAnswer(status: number, text: string): { allow: boolean; grant: HookGrant } | string {
  if (status < 200 || status > 299) return `hook answered HTTP ${status}`;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return 'hook answer is not JSON';
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return 'hook answer is not a JSON object';
  const a = body as Record<string, unknown>;
  if (typeof a.allow !== 'boolean') return 'hook answer has no boolean "allow"';
  if (a.label !== undefined && a.label !== null && (typeof a.label !== 'string' || a.label.length > MAX_LABEL_LENGTH)) return 'hook answer "label" is not a string of at most 255 characters';
  const attributes = (field: string): KvEntry[] | string => {
    const v = a[field];
    if (v === undefined || v === null) return [];
    if (typeof v !== 'object' || Array.isArray(v)) return `hook answer "${field}" is not a JSON object`;
    const entries = objectToEntries(v as Record<string, unknown>, false);
    if (entries.length > MAX_ATTRIBUTES || entries.some((e) => e.key === '' || e.key.length > 255)) return `hook answer "${field}" has too many or bad keys`;
    return entries;
  };
  const serverAttributes = attributes('serverAttributes');
  if (typeof serverAttributes === 'string') return serverAttributes;
  const sharedAttributes = attributes('sharedAttributes');
  if (typeof sharedAttributes === 'string') return sharedAttributes;
  return { allow: a.allow, grant: { label: typeof a.label === 'string' ? a.label : undefined, serverAttributes, sharedAttributes } };
}

/** Observer of hook calls (the composition root turns it into metrics). */
export type HookObserver = (outcome: HookOutcome, seconds: number) => void;

export class PreProvisioningHook {
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly caller: HookCaller,
    private readonly maxConcurrent: number,
    private readonly logger: CoreLogger,
    private readonly observe: HookObserver = () => {},
  ) {}

  /** Asks the profile's hook, when it has one, about a request whose secret already matched. */
  async decide(profile: DeviceProfile, options: PreProvisioningHookOptions | undefined, req: ProvisionRequest, deviceName: string, source: RequestSource): Promise<HookDecision> {
    if (!options) return { proceed: true, grant: undefined, outcome: 'none' };
    const started = Date.now();
    const deadline = started + options.timeoutMs;
    const body: HookRequestBody = {
      event: 'PRE_PROVISION',
      deviceName,
      deviceProfileId: profile.id,
      deviceProfileName: profile.name,
      provisionType: profile.provisionType,
      transport: source.transport,
      sourceAddress: source.address ?? null,
      credentialsType: req.credentialsType ?? 'ACCESS_TOKEN',
      gateway: req.gateway === true,
      timestamp: started,
    };
    const answer = await this.call(options, JSON.stringify(body), deadline);
    const seconds = (Date.now() - started) / 1000;
    if (typeof answer === 'string') {
      this.logger.warn({ event: 'provision_hook', profileId: profile.id, failOpen: options.failOpen, detail: answer }, 'pre-provisioning hook unavailable');
      this.observe(options.failOpen ? 'failedOpen' : 'unavailable', seconds);
      if (options.failOpen) return { proceed: true, grant: undefined, outcome: 'failedOpen', detail: `pre-provisioning hook unavailable, failed open: ${answer}` };
      return { proceed: false, reason: 'HOOK_UNAVAILABLE', outcome: 'unavailable', detail: `pre-provisioning hook unavailable: ${answer}` };
    }
    this.observe(answer.allow ? 'allowed' : 'denied', seconds);
    if (!answer.allow) return { proceed: false, reason: 'HOOK_DENIED', outcome: 'denied', detail: 'pre-provisioning hook denied the request' };
    return { proceed: true, grant: answer.grant, outcome: 'allowed', detail: 'pre-provisioning hook allowed the request' };
  }

  /** One call within the deadline (waiting for a free slot counts against it); a string says why it failed. */
  private async call(options: PreProvisioningHookOptions, body: string, deadline: number): Promise<{ allow: boolean; grant: HookGrant } | string> {
    if (!(await this.acquire(deadline))) return `more than ${this.maxConcurrent} hook calls in flight until the timeout`;
    try {
      const timeoutMs = deadline - Date.now();
      if (timeoutMs <= 0) return `no answer within ${options.timeoutMs} ms`;
      const timestamp = String(Date.now());
      const headers = { [SIGNATURE_HEADER]: hookSignature(options.secret, timestamp, body), [TIMESTAMP_HEADER]: timestamp };
      let response;
      try {
        response = await this.caller.post({ url: options.url, body, headers, timeoutMs, maxResponseBytes: MAX_HOOK_ANSWER_BYTES });
      } catch (err) {
        const name = (err as Error)?.name;
        return name === 'TimeoutError' || name === 'AbortError' ? `no answer within ${options.timeoutMs} ms` : `hook unreachable: ${(err as Error)?.message ?? String(err)}`;
      }
      return parseAnswer(response.status, response.body);
    } finally {
      this.release();
    }
  }

  private acquire(deadline: number): Promise<boolean> {
    if (this.inFlight < this.maxConcurrent) {
      this.inFlight++;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.inFlight++;
        resolve(true);
      };
      const timer = setTimeout(() => {
        const at = this.waiting.indexOf(wake);
        if (at >= 0) this.waiting.splice(at, 1);
        resolve(false);
      }, Math.max(0, deadline - Date.now()));
      this.waiting.push(wake);
    });
  }

  private release(): void {
    this.inFlight--;
    this.waiting.shift()?.();
  }
}

/**
 * Asks `profile`'s hook, when its provision configuration names one, before anything is written (key/secret and X.509
 * chain provisioning alike). A profile with a hook but no caller configured fails closed.
 */
export function askProfileHook(hook: PreProvisioningHook | undefined, profile: DeviceProfile, req: ProvisionRequest, deviceName: string, source: RequestSource): Promise<HookDecision> | HookDecision {
  const options = provisioningOptions(profile.profileData?.provisionConfiguration).hook;
  if (!options) return { proceed: true, grant: undefined, outcome: 'none' };
  if (!hook) return { proceed: false, reason: 'HOOK_UNAVAILABLE', outcome: 'unavailable', detail: 'no hook caller configured' };
  return hook.decide(profile, options, req, deviceName, source);
}

/** Writes what the hook granted for a device being provisioned, inside the provisioning transaction. */
export async function writeHookGrant(tx: { saveAttributes(write: { deviceId: string; scope: 'SERVER_SCOPE' | 'SHARED_SCOPE'; entries: KvEntry[]; ts: number }): Promise<void> }, deviceId: string, grant: HookGrant | undefined, now: number): Promise<void> {
  if (!grant) return;
  if (grant.serverAttributes.length > 0) await tx.saveAttributes({ deviceId, scope: 'SERVER_SCOPE', entries: grant.serverAttributes, ts: now });
  if (grant.sharedAttributes.length > 0) await tx.saveAttributes({ deviceId, scope: 'SHARED_SCOPE', entries: grant.sharedAttributes, ts: now });
}
