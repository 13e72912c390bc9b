/**
 * Device authentication with a bounded credentials cache, so a connect storm reads each device's credentials
 * from the store once. Entries are dropped when credentials change (bus `credentials` channel).
 */
import type { DeviceAuthApi, DeviceIdentity, DeviceTransport } from './api.ts';
import { sha3Hex, sha3Join, parseMqttBasicValue } from './credentials.ts';
import { FleetgateError } from './errors.ts';
import type { DeviceCredentials } from './model.ts';
import type { Store } from './ports/store.ts';

interface CacheEntry {
  identity: DeviceIdentity | undefined;
  credentials: DeviceCredentials | undefined;
  /** The device profile's transport type (`DEFAULT`, `MQTT`, `COAP`, ...). */
  transportType: string;
  expires: number;
}

const POSITIVE_TTL_MS = 60_000;
const NEGATIVE_TTL_MS = 2_000;
const MAX_ENTRIES = 200_000;
/** How often expired entries are dropped (a miss cached for 2 s must not stay in memory until the cache is full). */
const SWEEP_MS = 5_000;

/**
 * One string instance per distinct tenant id, profile id, credentials type and transport type: every row read from the
 * store carries its own copy, and a cache of 100,000 devices would otherwise hold 100,000 copies of the same few.
 */
const shared = new Map<string, string>();
function intern<T extends string>(value: T): T {
  const held = shared.get(value);
  if (held !== undefined) return held as T;
  if (shared.size < 10_000) shared.set(value, value);
  return value;
}

export class DeviceAuth implements DeviceAuthApi {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<CacheEntry>>();
  /**
   * Bumped by every invalidation: a load that started before one may have read the old state, so it is returned to
   * its callers but not cached (else a miss read just before a device was created would hide it for NEGATIVE_TTL_MS).
   */
  private generation = 0;
  private readonly sweeper: NodeJS.Timeout;
  /**
   * Devices updated (renamed, moved profile, gateway flag) in the last POSITIVE_TTL_MS, with when this node heard of it,
   * oldest first: a cached lookup of one loaded before that holds its old identity and is read again. Kept by device,
   * not by credentials id, so rotated-away credentials in their grace period are caught too, at no cost per entry.
   */
  private readonly updated = new Map<string, number>();
  /**
   * Credentials ids invalidated while a lookup of them was in flight, with the generation then: that lookup read them
   * before the change (a deletion, new credentials) and reads them again. Each entry is taken by the lookup it was
   * made for (only made while one is in flight).
   */
  private readonly invalidatedInFlight = new Map<string, number>();

  constructor(private readonly store: Store) {
    this.sweeper = setInterval(() => this.sweep(Date.now()), SWEEP_MS);
    this.sweeper.unref();
  }

  /** Stops the sweep of expired entries. */
  close(): void {
    clearInterval(this.sweeper);
  }

  private sweep(now: number): void {
    for (const [key, entry] of this.cache) if (entry.expires <= now) this.cache.delete(key);
    for (const [deviceId, at] of this.updated) {
      if (at > now - POSITIVE_TTL_MS) break; // every entry cached before `at` has expired since
      this.updated.delete(deviceId);
    }
  }

  /** Drops cached lookups of a device whose identity changed (bus `device-updated`), whatever credentials they were for. */
  deviceUpdated(deviceId: string): void {
    this.generation++;
    // A lookup in flight may have read the device before the update: a login starting now must not join it (its
    // session would open with the old identity after this update has passed). Which device a load is of is known only
    // once loaded, so every one in flight is left to finish alone (updates are rare).
    this.inflight.clear();
    this.updated.delete(deviceId); // set again at the end: the map stays oldest first
    this.updated.set(deviceId, Date.now());
  }

  /**
   * Whether a cached lookup was loaded before its device was updated. An entry's load time is taken as
   * `expires - POSITIVE_TTL_MS`; a grace entry expires sooner, so it may be read again once more than needed.
   */
  private staleAfterUpdate(entry: CacheEntry): boolean {
    const deviceId = entry.identity?.deviceId;
    if (deviceId === undefined) return false;
    const at = this.updated.get(deviceId);
    return at !== undefined && entry.expires - POSITIVE_TTL_MS <= at;
  }

  /** Drops cached lookups for a credentials id (after create, update or delete). */
  invalidate(credentialsId: string): void {
    this.generation++;
    this.cache.delete(credentialsId);
    if (this.inflight.delete(credentialsId)) this.invalidatedInFlight.set(credentialsId, this.generation);
  }

  private async lookup(credentialsId: string): Promise<CacheEntry> {
    const now = Date.now();
    const hit = this.cache.get(credentialsId);
    if (hit && hit.expires > now && (this.updated.size === 0 || !this.staleAfterUpdate(hit))) return hit;
    let pending = this.inflight.get(credentialsId);
    if (!pending) {
      const started = this.generation;
      const loading: Promise<CacheEntry> = this.load(credentialsId, started).finally(() => {
        if (this.inflight.get(credentialsId) === loading) this.inflight.delete(credentialsId);
        else if (!this.inflight.has(credentialsId)) this.invalidatedInFlight.delete(credentialsId); // a failed load's mark
      });
      pending = loading;
      this.inflight.set(credentialsId, pending);
    }
    return pending;
  }

  private async load(credentialsId: string, started: number, reloads = 0): Promise<CacheEntry> {
    const startedAt = Date.now();
    let credentials = await this.store.findCredentialsById(credentialsId);
    // Rotation's grace period: credentials replaced a moment ago still work until they expire (rotation.ts).
    let graceUntil = Infinity;
    if (!credentials) {
      const grace = await this.store.findCredentialsGrace(credentialsId, Date.now());
      if (grace) {
        credentials = { ...grace, id: `grace:${credentialsId}`, createdTime: 0, firstUsedTime: 0 };
        graceUntil = grace.expiresTime;
      }
    }
    let identity: DeviceIdentity | undefined;
    let transportType = 'DEFAULT';
    if (credentials) {
      const device = await this.store.getDeviceById(credentials.deviceId);
      if (device) {
        const credentialsType = intern(credentials.credentialsType);
        identity = { deviceId: device.id, tenantId: intern(device.tenantId), deviceName: device.name, profileId: intern(device.profileId), credentialsType, credentialsId };
        if (device.additionalInfo?.gateway === true) identity.gateway = true; // gateway spec §1.3: only JSON true
        transportType = intern((await this.store.getProfile(device.tenantId, device.profileId))?.transportType ?? 'DEFAULT');
        // The cached row shares the identity's strings instead of holding equal copies.
        credentials.credentialsType = credentialsType;
        if (credentials.deviceId === device.id) credentials.deviceId = device.id;
        if (credentials.credentialsId === credentialsId) credentials.credentialsId = credentialsId;
      }
    }
    const entry = { identity, credentials: identity ? credentials : undefined, transportType, expires: Math.min(graceUntil, Date.now() + (identity ? POSITIVE_TTL_MS : NEGATIVE_TTL_MS)) };
    if (started !== this.generation) {
      // The credentials changed (the device deleted, say) while this load read them: the session of the login it
      // answers would open after the change has passed, so they are read again.
      const invalidated = this.invalidatedInFlight.get(credentialsId);
      if (invalidated !== undefined && invalidated > started) {
        this.invalidatedInFlight.delete(credentialsId);
        if (reloads < 3) return this.load(credentialsId, this.generation, reloads + 1);
      }
      // The device was updated while this load read it: the login it answers opens its session after the update has
      // passed (no later update would reach it), so it is read again (a few times at most).
      const updatedAt = identity ? this.updated.get(identity.deviceId) : undefined;
      if (updatedAt !== undefined && updatedAt >= startedAt && reloads < 3) return this.load(credentialsId, this.generation, reloads + 1);
      return entry;
    }
    if (this.cache.size >= MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(credentialsId, entry);
    return entry;
  }

  /** Drops every cached lookup (after a device profile changed). */
  clear(): void {
    this.generation++;
    this.cache.clear();
    this.inflight.clear();
  }

  /**
   * spec §7 step 4: whether `hash` is the id of a device's X509_CERTIFICATE credentials. Uses the same cache as a login
   * but does not count as one (no first use recorded, no transport check).
   */
  async isX509Registered(hash: string): Promise<boolean> {
    const entry = await this.lookup(hash);
    return entry.credentials?.credentialsType === 'X509_CERTIFICATE';
  }

  /**
   * Records the first use of credentials (DESIGN 3 ends the lost-response retry window). spec §8.1 step 3: a device
   * whose profile names another transport is refused on this one (SERVER_UNAVAILABLE: CONNACK 3 / 0x88, CoAP 5.03).
   */
  private async used(entry: CacheEntry, transport?: DeviceTransport): Promise<DeviceIdentity | undefined> {
    if (transport && entry.identity && entry.transportType !== 'DEFAULT' && entry.transportType !== transport) {
      throw new FleetgateError('SERVER_UNAVAILABLE', `Device profile transport type ${entry.transportType} does not allow ${transport}`);
    }
    const c = entry.credentials;
    if (c && c.firstUsedTime === null) {
      c.firstUsedTime = Date.now();
      await this.store.markCredentialsUsed(c.id, c.firstUsedTime);
    }
    return entry.identity;
  }

  async byAccessToken(token: string, transport?: DeviceTransport): Promise<DeviceIdentity | undefined> {
    if (!token) return undefined;
    const entry = await this.lookup(token);
    if (entry.credentials?.credentialsType !== 'ACCESS_TOKEN') return undefined;
    return this.used(entry, transport);
  }

  async byX509Hash(hash: string, transport?: DeviceTransport): Promise<DeviceIdentity | undefined> {
    const entry = await this.lookup(hash);
    if (entry.credentials?.credentialsType !== 'X509_CERTIFICATE') return undefined;
    return this.used(entry, transport);
  }

  /** spec §8.1 basic authentication order and CONNACK classes. */
  async byMqttCredentials(clientId: string, username: string | undefined, password: Buffer | string | undefined): Promise<DeviceIdentity> {
    const c = clientId ?? '';
    const u = username ?? '';
    const p = password === undefined ? undefined : typeof password === 'string' ? password : password.toString('utf8');
    if (u === '') {
      const entry = c === '' ? undefined : await this.lookup(sha3Hex(c));
      if (entry?.credentials?.credentialsType === 'MQTT_BASIC') {
        if (this.basicMatches(entry.credentials, c, u, p) === 'ok') return (await this.used(entry, 'MQTT'))!;
        throw new FleetgateError('BAD_USERNAME_OR_PASSWORD', 'Bad MQTT credentials');
      }
      return this.notFound(c, u, p);
    }
    const combined = await this.lookup(sha3Join(c, u));
    if (combined.credentials?.credentialsType === 'MQTT_BASIC') {
      const match = this.basicMatches(combined.credentials, c, u, p);
      if (match === 'ok') return (await this.used(combined, 'MQTT'))!;
      // spec §8.1 / §9 J44: right client id and user name, wrong password -> reject, no fallback to token.
      if (match === 'password') throw new FleetgateError('BAD_USERNAME_OR_PASSWORD', 'Bad MQTT password');
    }
    const byName = await this.lookup(u);
    if (byName.credentials?.credentialsType === 'ACCESS_TOKEN') return (await this.used(byName, 'MQTT'))!;
    if (byName.credentials?.credentialsType === 'MQTT_BASIC') {
      if (this.basicMatches(byName.credentials, c, u, p) === 'ok') return (await this.used(byName, 'MQTT'))!;
      throw new FleetgateError('BAD_USERNAME_OR_PASSWORD', 'Bad MQTT credentials');
    }
    return this.notFound(c, u, p);
  }

  private basicMatches(creds: DeviceCredentials, c: string, u: string, p: string | undefined): 'ok' | 'identity' | 'password' {
    const stored = parseMqttBasicValue(creds.credentialsValue);
    if (stored.clientId && stored.clientId !== c) return 'identity';
    if (stored.userName && stored.userName !== u) return 'identity';
    if (stored.password && stored.password !== p) return 'password';
    return 'ok';
  }

  /** spec §8.1 CONNACK table for unknown credentials. */
  private notFound(c: string, u: string, p: string | undefined): never {
    if (u !== '' || (p !== undefined && p !== '')) throw new FleetgateError('BAD_USERNAME_OR_PASSWORD', 'Unknown device credentials');
    if (c.trim() !== '') throw new FleetgateError('CLIENT_ID_REJECTED', 'Unknown MQTT client id');
    throw new FleetgateError('UNAUTHORIZED', 'No credentials');
  }
}
