/**
 * Builds core over its two ports. The composition root (src/server.ts) calls createCore once per process.
 */
import { Attributes } from './attributes.ts';
import { AuditRecorder } from './audit.ts';
import type { ProvisioningApi } from './api.ts';
import type { Core, CoreLogger, CoreObserver, CoreSettings } from './core-types.ts';
import { DeviceAuth } from './device-auth.ts';
import { Devices } from './devices.ts';
import { GroupCommitter } from './group-commit.ts';
import { isDependencyUnavailable } from './errors.ts';
import { Outages } from './outages.ts';
import { kvToJson } from './kv-json.ts';
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
  /** What is down right now (issue 18): read by /healthz, fed by commits, the bus and the health probe. */
  outages: Outages;
}

/** Pushes the device's shared attributes changed since `since` to its sessions on this node (after a bus outage). */
async function resendSharedAttributes(store: Store, sessions: SessionRegistry, deviceId: string, since: number): Promise<void> {
  const changed = (await store.getAttributes(deviceId, 'SHARED_SCOPE')).filter((a) => a.lastUpdateTs >= since);
  if (changed.length === 0) return;
  const update: Record<string, unknown> = {};
  for (const a of changed) update[a.key] = kvToJson(a.value);
  sessions.pushAttributes(deviceId, update);
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
export async function createCore(deps: {
  store: Store;
  bus: Bus;
  settings: CoreSettings;
  logger: CoreLogger;
  observer?: CoreObserver;
  throttle?: Throttle;
  /** The outage tracker, when the composition root feeds it from the store's and the bus's connections too. */
  outages?: Outages;
}): Promise<CoreInstance> {
  const { store, bus, settings, logger, observer } = deps;
  const throttle =
    deps.throttle ??
    new Throttle({
      onBlock: (guard, key, ms) => logger.warn({ event: 'throttle', guard, key: guard === 'provision-key' ? undefined : key, blockedMs: ms }, 'too many failures: throttling'),
    });
  const outages = deps.outages ?? new Outages(logger, observer);
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
  const transactions = new TransactionBatcher(store, 256, logger, store.transactionConcurrency, outages);
  const provisioning = new Provisioning(store, transactions, profiles, audit, { retryAfterMs: settings.provisionRetryAfterMs }, logger, (id, deviceId) => {
    credentialsChanged(id, deviceId).catch((err) => logger.warn({ err }, 'credentials-changed publish failed'));
  });
  // spec §7: X.509 chain provisioning shares the batcher, the profile cache and the auth cache with the rest.
  const x509Provisioning = new X509ChainProvisioning(store, transactions, profiles, auth, audit, logger, (id, deviceId) => {
    credentialsChanged(id, deviceId).catch((err) => logger.warn({ err }, 'credentials-changed publish failed'));
  });
  const committer = new GroupCommitter(store, { maxRows: settings.batchMaxRows, maxDelayMs: settings.batchMaxDelayMs, minIntervalMs: settings.batchIntervalMs }, logger, outages);
  const telemetry = new Telemetry(store, committer, observer);
  const sessions = new SessionRegistry(bus, logger);
  const rpc = new Rpc(store, bus, sessions, settings.rpcDefaultTimeout, logger);
  sessions.resendAttributes = (deviceId, since) => {
    resendSharedAttributes(store, sessions, deviceId, since).catch((err) => {
      if (isDependencyUnavailable(err)) outages.failed(err);
      else logger.warn({ err, deviceId }, 'shared attributes not re-sent after the bus outage');
    });
  };
  // ThingsBoard marks RPCs past their expiry; every node may run this (the updates are idempotent).
  const rpcExpiry = setInterval(
    () =>
      store.expireRpcs(Date.now()).catch((err) => {
        if (isDependencyUnavailable(err)) outages.failed(err); // logged once, as the outage
        else logger.warn({ err }, 'rpc expiry sweep failed');
      }),
    settings.rpcExpirySweepMs ?? 5000,
  );
  rpcExpiry.unref();
  const devices = new Devices(store, profiles, audit, credentialsChanged, bus);
  return {
    provisioning: observedProvisioning(throttledProvisioning(provisioning, throttle), observer),
    x509Provisioning: throttledX509Provisioning(x509Provisioning, throttle),
    auth: new ThrottledDeviceAuth(auth, throttle),
    throttle,
    telemetry: rateLimitedTelemetry(telemetry, throttle),
    timeseries: telemetry,
    attributes: new Attributes(store, bus, (err) => outages.failed(err)),
    rpc,
    sessions,
    sessionRegistry: sessions,
    profiles,
    devices,
    users: throttledUsers(new Users(store), throttle),
    audit,
    committer,
    outages,
    async close() {
      clearInterval(rpcExpiry);
      await transactions.drain();
      await committer.close();
      await unsubscribeCredentials();
      await throttle.close();
    },
  };
}
