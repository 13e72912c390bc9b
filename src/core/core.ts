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
import { isDependencyUnavailable } from './errors.ts';
import { Outages } from './outages.ts';
import { LiveInterest } from './live-interest.ts';
import { LiveUpdates } from './live-updates.ts';
import { DEFAULT_GATEWAY_LIMITS, Gateways } from './gateway/gateways.ts';
import { gatewayNotices } from './gateway/notices.ts';
import { SubDeviceDirectory } from './gateway/sub-devices.ts';
import { kvToJson } from './kv-json.ts';
import { Profiles } from './profiles.ts';
import { Provisioning } from './provisioning/provision.ts';
import { PreProvisioningHook } from './provisioning/pre-provisioning-hook.ts';
import { CredentialsRotation } from './provisioning/rotation.ts';
import { CertificateAuthorityKeys } from './provisioning/certificate-signing.ts';
import { randomBytes } from 'node:crypto';
import type { HookCaller } from './ports/hook-caller.ts';
import { throttledX509Provisioning, X509ChainProvisioning } from './provisioning/x509-chain.ts';
import { Rpc } from './rpc.ts';
import { SessionRegistry } from './sessions.ts';
import { Telemetry } from './telemetry.ts';
import { TransactionBatcher } from './transaction-batcher.ts';
import { rateLimitedTelemetry, Throttle, ThrottledDeviceAuth, throttledProvisioning, throttledUsers } from './throttle/index.ts';
import { Users } from './users.ts';
import { Ota } from './ota/ota.ts';
import { DEFAULT_EXPORT_SETTINGS, type ExportObserver } from './export/delivery.ts';
import { Exporter } from './export/exporter.ts';
import type { ExportSinkFactory } from './ports/export-sink.ts';
import { channels, type Bus, type DeviceUpdated } from './ports/bus.ts';
import { BusCatchUp } from './bus-catch-up.ts';
import { BusRepublisher } from './bus-republish.ts';
import type { Store } from './ports/store.ts';

/** Core plus the internals the composition root may observe (metrics). */
export interface CoreInstance extends Core {
  committer: GroupCommitter;
  sessionRegistry: SessionRegistry;
  /** Brute-force guards in front of provisioning and device authentication (DESIGN 6). */
  throttle: Throttle;
  /** What is down right now (issue 18): read by /healthz, fed by commits, the bus and the health probe. */
  outages: Outages;
  /** The live-update hub behind `live` (its onPublished hook feeds metrics). */
  liveUpdates: LiveUpdates;
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
/** A device's RPC reply as JSON when it is JSON, else as the text it sent. */
function jsonOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Without sink adapters (core alone, in tests), every delivery fails and messages wait in the outbox. */
const noSinks: ExportSinkFactory = () => ({
  deliver: async () => {
    throw new Error('no export sink adapters configured');
  },
  close: async () => {},
});

export async function createCore(deps: {
  store: Store;
  bus: Bus;
  settings: CoreSettings;
  logger: CoreLogger;
  observer?: CoreObserver;
  throttle?: Throttle;
  /** The outage tracker, when the composition root feeds it from the store's and the bus's connections too. */
  outages?: Outages;
  /** Calls pre-provisioning hooks (issue 15); without it, profiles with a hook fail closed. */
  hookCaller?: HookCaller;
  /** Export destination adapters (src/export/); see noSinks. */
  openSink?: ExportSinkFactory;
  exportObserver?: ExportObserver;
}): Promise<CoreInstance> {
  const { store, bus, settings, logger, observer } = deps;
  const throttle =
    deps.throttle ??
    new Throttle({
      onBlock: (guard, key, ms) => logger.warn({ event: 'throttle', guard, key: guard === 'provision-key' ? undefined : key, blockedMs: ms }, 'too many failures: throttling'),
    });
  const outages = deps.outages ?? new Outages(logger, observer);
  const audit = new AuditRecorder(store);
  // Change notices to every node: a failed publish never fails the saved change; it is published again (bus-republish.ts).
  const notices = new BusRepublisher(bus, store, logger, (kind) => observer?.busPublishFailed?.(kind));
  const exporter = new Exporter(store, {
    openSink: deps.openSink ?? noSinks,
    settings: { ...DEFAULT_EXPORT_SETTINGS, ...settings.export },
    logger,
    observer: deps.exportObserver,
    rulesChanged: () => notices.publish(channels.credentials, { kind: 'export-rules-changed' }),
  });
  audit.onProvisioning = (tx, e) =>
    exporter.provisioned(tx, { deviceId: e.device?.id ?? null, deviceName: e.device?.name ?? e.req.deviceName ?? null, tenantId: e.profile.tenantId, profileId: e.profile.id }, { status: e.status, reason: e.reason }, e.source);
  const auth = new DeviceAuth(store);
  // The key that encrypts CA keys of certificateSigning profiles: configured, or generated once per database.
  const caKeys = new CertificateAuthorityKeys(settings.caKeyEncryptionKey ?? (await store.initSetting('ca_key_encryption_key', randomBytes(32).toString('base64'))));
  const profiles = new Profiles(
    store,
    audit,
    async () => {
      auth.clear();
      await notices.publish(channels.credentials, { kind: 'profiles-changed' });
    },
    caKeys,
  );
  // Set once the session registry exists (below): a device update heard before has no session to refresh.
  let sessionsOfNode: SessionRegistry | undefined;
  let catchUp: BusCatchUp | undefined;
  const applyToNode = (update: DeviceUpdated) => {
    auth.deviceUpdated(update.deviceId);
    sessionsOfNode?.deviceUpdated(update);
  };
  // A notice (heard, or this node's own change) wins over an older read of a catch-up under way.
  const applyDeviceUpdate = (update: DeviceUpdated) => {
    catchUp?.noticed(update.deviceId);
    applyToNode(update);
  };
  const unsubscribeCredentials = await bus.subscribe(channels.credentials, (m) => {
    if (m.kind === 'credentials-changed') auth.invalidate(m.credentialsId);
    else if (m.kind === 'device-updated') applyDeviceUpdate(m);
    else if (m.kind === 'profiles-changed') {
      auth.clear();
      profiles.clearCache();
    } else if (m.kind === 'export-rules-changed') {
      exporter.rules.reload().catch((err) => logger.warn({ err }, 'export rules reload failed'));
    }
  });
  const credentialsChanged = async (credentialsId: string, deviceId: string) => {
    auth.invalidate(credentialsId);
    await notices.publish(channels.credentials, { kind: 'credentials-changed', credentialsId, deviceId });
  };
  // spec thingsboard-ota §3.3: a device created by provisioning gets its profile's packages queued (ota is built below).
  let ota: Ota | undefined;
  // Devices provisioned in the same turn of the event loop are looked up together (one query per provisioning group).
  let provisionedNow = new Map<string, string>();
  const provisioned = (deviceId: string, profileId?: string) => {
    if (profileId === undefined) return void ota?.deviceCreated(deviceId).catch((err) => logger.warn({ err, deviceId }, 'ota: queueing a provisioned device failed'));
    if (provisionedNow.size === 0) {
      setImmediate(() => {
        const devices = [...provisionedNow].map(([id, pid]) => ({ id, profileId: pid }));
        provisionedNow = new Map();
        ota?.devicesCreated(devices).catch((err) => logger.warn({ err, devices: devices.length }, 'ota: queueing provisioned devices failed'));
      });
    }
    provisionedNow.set(deviceId, profileId);
  };
  const transactions = new TransactionBatcher(store, 256, logger, store.transactionConcurrency, outages);
  const hook = deps.hookCaller
    ? new PreProvisioningHook(deps.hookCaller, settings.provisionHookConcurrency ?? 16, logger, (outcome, seconds) => observer?.provisionHookCalled?.(outcome, seconds))
    : undefined;
  const provisioning = new Provisioning(
    store,
    transactions,
    profiles,
    audit,
    { retryAfterMs: settings.provisionRetryAfterMs },
    logger,
    (id, deviceId, profileId, unseen) => {
      // A token generated for this device a moment ago: no cache anywhere holds a lookup of it, so no node is told.
      if (!unseen) credentialsChanged(id, deviceId).catch((err) => logger.warn({ err }, 'credentials-changed publish failed'));
      provisioned(deviceId, profileId);
    },
    hook,
    caKeys,
  );
  // spec §7: X.509 chain provisioning shares the batcher, the profile cache and the auth cache with the rest.
  const x509Provisioning = new X509ChainProvisioning(store, transactions, profiles, auth, audit, logger, (id, deviceId) => {
    credentialsChanged(id, deviceId).catch((err) => logger.warn({ err }, 'credentials-changed publish failed'));
    provisioned(deviceId);
  }, hook);
  const committer = new GroupCommitter(store, { maxRows: settings.batchMaxRows, maxDelayMs: settings.batchMaxDelayMs, minIntervalMs: settings.batchIntervalMs }, logger, outages);
  const telemetry = new Telemetry(store, committer, observer);
  const interest = new LiveInterest(bus, logger, { ttlMs: settings.liveInterestTtlMs });
  await interest.start();
  const live = new LiveUpdates(bus, interest, logger);
  committer.onBatchCommitted = (batch) => live.committed(batch);
  const sessions = new SessionRegistry(bus, logger);
  sessionsOfNode = sessions;
  // After a bus outage this node assumes it missed change notices: caches go, sessions are read again (bus-catch-up.ts).
  catchUp = new BusCatchUp(store, sessions, applyToNode, logger);
  const busCatchUp = catchUp;
  bus.onReconnect(() => {
    auth.clear();
    profiles.clearCache();
    exporter.rules.reload().catch((err) => logger.warn({ err }, 'export rules reload failed'));
    void busCatchUp.reconnected();
  });
  const activity = new DeviceActivityTracker(store, { inactivityTimeoutMs: settings.deviceInactivityTimeoutMs ?? 600_000, flushMs: settings.deviceActivityFlushMs }, logger);
  activity.openDevices = () => sessions.deviceIds();
  sessions.onDeviceOpened = (deviceId) => activity.connected(deviceId);
  sessions.onDeviceClosed = (deviceId) => activity.disconnected(deviceId);
  const rpc = new Rpc(store, bus, sessions, settings.rpcDefaultTimeout, logger);
  committer.decorate = (batch) => exporter.outbox.decorate(batch);
  committer.afterCommit = (batch) => exporter.delivery.remember(batch.outbox);
  telemetry.noteExported = (device, kind) => exporter.outbox.noteDevice(device, kind);
  sessions.onConnectivity = (identity, event) => {
    exporter.event('connectivity', identity, { event }).catch((err) => logger.warn({ err }, 'connectivity export failed'));
  };
  rpc.onOutcome = async (tx, request, status, response) => {
    if (!exporter.rules.wants('rpc')) return;
    const device = await tx.getDeviceById(request.deviceId);
    if (!device) return;
    const data = { rpcId: request.id, method: request.method, oneway: request.oneway, status, response: response === null ? null : jsonOrText(response) };
    await exporter.event('rpc', { deviceId: device.id, deviceName: device.name, tenantId: device.tenantId, profileId: device.profileId }, data, tx);
  };
  await exporter.start();
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
  // This node at once (the admin's next request sees it), then every other node.
  const deviceUpdated = async (update: DeviceUpdated, tenantId: string) => {
    applyDeviceUpdate(update);
    await notices.publish(channels.credentials, update, tenantId);
  };
  const devices = new Devices(store, profiles, audit, credentialsChanged, notices, gatewayNotices(store, rpc, logger), deviceUpdated);
  const attributes = new Attributes(store, bus, live, (err) => outages.failed(err));
  ota = new Ota(
    store,
    attributes,
    audit,
    { groupSize: settings.otaRolloutGroupSize ?? 100, intervalMs: settings.otaRolloutIntervalMs ?? 60_000, maxPackageBytes: settings.otaMaxPackageBytes ?? 1024 ** 3 },
    logger,
    observer,
  );
  devices.ota = ota;
  profiles.ota = ota;
  ota.start();
  const gatewayLimits = { ...DEFAULT_GATEWAY_LIMITS, ...settings.gateway };
  const gateway = new Gateways(
    {
      store,
      directory: new SubDeviceDirectory(store, profiles, audit, gatewayLimits.maxSubDevices),
      sessions,
      committer,
      throttle,
      attributes,
      rpc,
      limits: gatewayLimits,
      countCommitted: observer?.telemetryCommitted ? (points) => observer.telemetryCommitted!(points) : undefined,
      noteExported: (device, kind) => exporter.outbox.noteDevice(device, kind),
    },
    logger,
  );
  const rotation = new CredentialsRotation(store, attributes, audit, settings.credentialsRotationGraceMs ?? 3_600_000, logger, credentialsChanged, caKeys);
  return {
    rotation,
    provisioning: observedProvisioning(throttledProvisioning(provisioning, throttle), observer),
    x509Provisioning: throttledX509Provisioning(x509Provisioning, throttle),
    auth: activityReportingAuth(new ThrottledDeviceAuth(auth, throttle), activity),
    throttle,
    telemetry: rateLimitedTelemetry(telemetry, throttle),
    timeseries: telemetry,
    attributes,
    live,
    liveUpdates: live,
    ota,
    gateway,
    rpc,
    sessions,
    sessionRegistry: sessions,
    profiles,
    devices,
    deviceInfos: new DeviceInfos(store, activity),
    consoleDevices: new ConsoleDevices(store, activity),
    bulkImport: new DeviceBulkImport(store, devices, attributes),
    timeseriesAdmin: new TimeseriesAdmin(store, telemetry, audit, live),
    userSecurity: new UserSecurity(store, audit),
    users: throttledUsers(new Users(store), throttle),
    audit,
    exports: exporter,
    committer,
    outages,
    async close() {
      clearInterval(rpcExpiry);
      auth.close();
      notices.close();
      busCatchUp.close();
      await ota.stop();
      await transactions.drain();
      await committer.close();
      await activity.close();
      await live.close();
      await exporter.close();
      await unsubscribeCredentials();
      await throttle.close();
    },
  };
}
