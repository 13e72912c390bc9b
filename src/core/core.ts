/**
 * Builds core over its two ports. The composition root (src/server.ts) calls createCore once per process.
 */
import { Attributes } from './attributes.ts';
import { AuditRecorder } from './audit.ts';
import type { ProvisioningApi } from './api.ts';
import type { Core, CoreLogger, CoreObserver, CoreSettings } from './core-types.ts';
import { activityReportingAuth, DeviceActivityTracker } from './device-activity.ts';
import { DeviceAuth } from './device-auth.ts';
import { DeviceInfos } from './device-infos.ts';
import { ConsoleDevices } from './console-devices.ts';
import { DeviceBulkImport } from './bulk-import.ts';
import { TimeseriesAdmin } from './timeseries-admin.ts';
import { UserSecurity } from './user-security.ts';
import { Devices } from './devices.ts';
import { GroupCommitter } from './group-commit.ts';
import { LiveInterest } from './live-interest.ts';
import { LiveUpdates } from './live-updates.ts';
import { Profiles } from './profiles.ts';
import { Provisioning } from './provisioning/provision.ts';
import { throttledX509Provisioning, X509ChainProvisioning } from './provisioning/x509-chain.ts';
import { Rpc } from './rpc.ts';
import { SessionRegistry } from './sessions.ts';
import { Telemetry } from './telemetry.ts';
import { TransactionBatcher } from './transaction-batcher.ts';
import { rateLimitedTelemetry, Throttle, ThrottledDeviceAuth, throttledProvisioning, throttledUsers } from './throttle/index.ts';
import { Users } from './users.ts';
import { channels, type Bus } from '../bus/bus.ts';
import type { Store } from '../store/store.ts';

/** Core plus the internals the composition root may observe (metrics). */
export interface CoreInstance extends Core {
  committer: GroupCommitter;
  sessionRegistry: SessionRegistry;
  /** Brute-force guards in front of provisioning and device authentication (DESIGN 6). */
  throttle: Throttle;
  /** The live-update hub behind `live` (its onPublished hook feeds metrics). */
  liveUpdates: LiveUpdates;
}

/** Wraps provisioning so the observer sees every outcome, on every transport, in one place. */
function observedProvisioning(inner: ProvisioningApi, observer: CoreObserver | undefined): ProvisioningApi {
  if (!observer?.provisioned) return inner;
  const report = observer.provisioned.bind(observer);
  return {
    async provision(request, source) {
      try {
        const result = await inner.provision(request, source);
        report(source.transport, result);
        return result;
      } catch (err) {
        report(source.transport, undefined);
        throw err;
      }
    },
  };
}

/**
 * Builds core. `throttle` defaults to an in-memory one with DEFAULT_THROTTLE_LIMITS (per node); pass one over a
 * RedisRateCounter for limits that hold per cluster. Core closes it.
 */
export async function createCore(deps: { store: Store; bus: Bus; settings: CoreSettings; logger: CoreLogger; observer?: CoreObserver; throttle?: Throttle }): Promise<CoreInstance> {
  const { store, bus, settings, logger, observer } = deps;
  const throttle =
    deps.throttle ??
    new Throttle({
      onBlock: (guard, key, ms) => logger.warn({ event: 'throttle', guard, key: guard === 'provision-key' ? undefined : key, blockedMs: ms }, 'too many failures: throttling'),
    });
  const audit = new AuditRecorder(store);
  const auth = new DeviceAuth(store);
  const profiles = new Profiles(store, audit, async () => {
    auth.clear();
    await bus.publish(channels.credentials, { kind: 'profiles-changed' });
  });
  const unsubscribeCredentials = await bus.subscribe(channels.credentials, (m) => {
    if (m.kind === 'credentials-changed') auth.invalidate(m.credentialsId);
    else if (m.kind === 'profiles-changed') {
      auth.clear();
      profiles.clearCache();
    }
  });
  const credentialsChanged = async (credentialsId: string, deviceId: string) => {
    auth.invalidate(credentialsId);
    await bus.publish(channels.credentials, { kind: 'credentials-changed', credentialsId, deviceId });
  };
  const transactions = new TransactionBatcher(store, 256, logger);
  const provisioning = new Provisioning(store, transactions, profiles, audit, { retryAfterMs: settings.provisionRetryAfterMs }, logger, (id, deviceId) => {
    credentialsChanged(id, deviceId).catch((err) => logger.warn({ err }, 'credentials-changed publish failed'));
  });
  // spec §7: X.509 chain provisioning shares the batcher, the profile cache and the auth cache with the rest.
  const x509Provisioning = new X509ChainProvisioning(store, transactions, profiles, auth, audit, logger, (id, deviceId) => {
    credentialsChanged(id, deviceId).catch((err) => logger.warn({ err }, 'credentials-changed publish failed'));
  });
  const committer = new GroupCommitter(store, { maxRows: settings.batchMaxRows, maxDelayMs: settings.batchMaxDelayMs, minIntervalMs: settings.batchIntervalMs }, logger);
  const telemetry = new Telemetry(store, committer, observer);
  const interest = new LiveInterest(bus, logger, { ttlMs: settings.liveInterestTtlMs });
  await interest.start();
  const live = new LiveUpdates(bus, interest, logger);
  committer.onBatchCommitted = (batch) => live.committed(batch);
  const sessions = new SessionRegistry(bus, logger);
  const activity = new DeviceActivityTracker(store, { inactivityTimeoutMs: settings.deviceInactivityTimeoutMs ?? 600_000, flushMs: settings.deviceActivityFlushMs }, logger);
  activity.openDevices = () => sessions.deviceIds();
  sessions.onDeviceOpened = (deviceId) => activity.connected(deviceId);
  sessions.onDeviceClosed = (deviceId) => activity.disconnected(deviceId);
  const rpc = new Rpc(store, bus, sessions, settings.rpcDefaultTimeout, logger);
  // ThingsBoard marks RPCs past their expiry; every node may run this (the updates are idempotent).
  const rpcExpiry = setInterval(() => store.expireRpcs(Date.now()).catch((err) => logger.warn({ err }, 'rpc expiry sweep failed')), settings.rpcExpirySweepMs ?? 5000);
  rpcExpiry.unref();
  const devices = new Devices(store, profiles, audit, credentialsChanged, bus);
  const attributes = new Attributes(store, bus, live);
  return {
    provisioning: observedProvisioning(throttledProvisioning(provisioning, throttle), observer),
    x509Provisioning: throttledX509Provisioning(x509Provisioning, throttle),
    auth: activityReportingAuth(new ThrottledDeviceAuth(auth, throttle), activity),
    throttle,
    telemetry: rateLimitedTelemetry(telemetry, throttle),
    timeseries: telemetry,
    attributes,
    live,
    liveUpdates: live,
    rpc,
    sessions,
    sessionRegistry: sessions,
    profiles,
    devices,
    deviceInfos: new DeviceInfos(store, activity),
    consoleDevices: new ConsoleDevices(store, activity),
    bulkImport: new DeviceBulkImport(store, devices, attributes),
    timeseriesAdmin: new TimeseriesAdmin(store, telemetry, audit),
    userSecurity: new UserSecurity(store, audit),
    users: throttledUsers(new Users(store), throttle),
    audit,
    committer,
    async close() {
      clearInterval(rpcExpiry);
      await transactions.drain();
      await committer.close();
      await activity.close();
      await live.close();
      await unsubscribeCredentials();
      await throttle.close();
    },
  };
}
