/**
 * ThingsBoard's MQTT gateway API in core (issue 14, gateway spec): opens a {@link GatewaySession} per gateway
 * connection. Transports only map topics to its methods and render what they return.
 */
import type { AttributesApi, DeviceIdentity, GatewayApi, GatewaySessionHandle, GatewaySink } from '../api.ts';
import type { CoreLogger } from '../core-types.ts';
import { FleetgateError } from '../errors.ts';
import type { CommittedHook, GroupCommitter } from '../group-commit.ts';
import type { Rpc } from '../rpc.ts';
import type { SessionRegistry } from '../sessions.ts';
import type { Throttle } from '../throttle/throttle.ts';
import type { Store } from '../ports/store.ts';
import type { GatewayMessageLimits } from './gateway-json.ts';
import { GatewaySession } from './gateway-session.ts';
import type { SubDeviceDirectory } from './sub-devices.ts';

/** Gateway limits (config gatewayMaxSubDevices, gatewayMaxDevicesPerMessage, gatewayMaxDeviceNameLength). */
export interface GatewayLimits extends GatewayMessageLimits {
  maxSubDevices: number;
}

/** ThingsBoard's device name limit (spec §3.5: over 255 characters fails validation). */
export const DEFAULT_GATEWAY_LIMITS: GatewayLimits = { maxSubDevices: 10_000, maxDevicesPerMessage: 1_000, maxNameLength: 255 };

/** What a gateway session uses of core. */
export interface GatewayDeps {
  store: Store;
  directory: SubDeviceDirectory;
  sessions: SessionRegistry;
  committer: GroupCommitter;
  throttle: Throttle;
  attributes: AttributesApi;
  rpc: Rpc;
  limits: GatewayLimits;
  countCommitted?: CommittedHook;
  /** Remembers who a sub-device is when its writes may be exported (data out, issue 16). */
  noteExported?: (device: DeviceIdentity, kind: 'telemetry' | 'attributes') => void;
}

/** The gateway API of core (`core.gateway`). */
export class Gateways implements GatewayApi {
  constructor(
    private readonly deps: GatewayDeps,
    private readonly logger: CoreLogger,
  ) {}

  open(gateway: DeviceIdentity, sink: GatewaySink): GatewaySessionHandle {
    if (!gateway.gateway) throw new FleetgateError('PERMISSION_DENIED', 'Device is not a gateway (additionalInfo.gateway is not true)');
    return new GatewaySession(gateway, sink, this.deps, this.logger);
  }
}
