/**
 * Server-side RPC: persisted requests (so a reconnecting device still gets a pending one), delivered through the
 * bus to whichever node holds the device's sessions, and answered back through the bus to the waiting caller.
 */
import type { RpcApi, RpcSubmission } from './api.ts';
import type { CoreLogger } from './core-types.ts';
import { FleetgateError, notFound } from './errors.ts';
import { newId } from './ids.ts';
import type { Device, Page, PageQuery, RpcRequest, RpcStatus } from './model.ts';
import type { DeviceSession, SessionRegistry } from './sessions.ts';
import { channels, type Bus, type BusMessage } from './ports/bus.ts';
import type { Store } from './ports/store.ts';

function parseJsonOr(text: string | null): unknown {
  if (text === null) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function validate(method: unknown, timeout: number): void {
  if (typeof method !== 'string' || method === '') throw new FleetgateError('INVALID_ARGUMENT', 'RPC method should be specified!');
  if (!Number.isFinite(timeout) || timeout <= 0) throw new FleetgateError('INVALID_ARGUMENT', 'RPC timeout must be a positive number of milliseconds');
}

/** Reports an RPC's end state with the store that writes it (the export outbox, issue 16). */
export type RpcOutcomeHook = (store: Store, rpc: RpcRequest, status: 'SUCCESSFUL' | 'TIMEOUT', response: string | null) => Promise<void>;

export class Rpc implements RpcApi {
  /** Set by the exporter: writes an outbox row with each end state, in the same transaction. */
  onOutcome: RpcOutcomeHook | undefined;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly sessions: SessionRegistry,
    private readonly defaultTimeoutMs: number,
    private readonly logger: CoreLogger,
  ) {
    sessions.deliverRpc = (targets, rpcId) => void this.deliver(targets, rpcId).catch((err) => this.logger.error({ err }, 'rpc delivery failed'));
  }

  async send(device: Device, request: { method: string; params: unknown; timeout?: number; oneway: boolean }): Promise<{ rpc: RpcRequest; response?: unknown }> {
    const timeout = request.timeout ?? this.defaultTimeoutMs;
    validate(request.method, timeout);
    const id = newId();
    let settle!: (m: Extract<BusMessage, { kind: 'rpc-reply' }>) => void;
    const replied = new Promise<Extract<BusMessage, { kind: 'rpc-reply' }>>((resolve) => (settle = resolve));
    const unsubscribe = await this.bus.subscribe(channels.rpcReply(id), (m) => {
      if (m.kind !== 'rpc-reply') return;
      if (m.status === 'SUCCESSFUL' || m.status === 'FAILED' || (request.oneway && m.status === 'DELIVERED')) settle(m);
    });
    try {
      const rpc = await this.enqueue(id, device, request, Date.now() + timeout);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeout)));
      const outcome = await Promise.race([replied, timedOut]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        // The reply may be stored although its bus message never came (a lost message, another node): trust the row.
        const fresh = await this.store.getRpc(id);
        if (fresh && (fresh.status === 'SUCCESSFUL' || (request.oneway && fresh.status === 'DELIVERED'))) {
          return { rpc: fresh, response: request.oneway ? undefined : parseJsonOr(fresh.response) };
        }
        await this.finish(rpc, 'TIMEOUT', null);
        throw new FleetgateError('TIMEOUT', `Device did not answer RPC ${request.method} within ${timeout} ms`);
      }
      if (outcome.status === 'FAILED') throw new FleetgateError('INTERNAL', 'RPC delivery failed');
      return { rpc: { ...rpc, status: outcome.status, response: outcome.response }, response: parseJsonOr(outcome.response) };
    } finally {
      await unsubscribe();
    }
  }

  async submit(device: Device, request: RpcSubmission): Promise<RpcRequest> {
    const timeout = request.timeout ?? this.defaultTimeoutMs;
    validate(request.method, timeout);
    const expirationTime = request.expirationTime ?? Date.now() + timeout;
    if (!Number.isSafeInteger(expirationTime)) throw new FleetgateError('INVALID_ARGUMENT', 'RPC expirationTime must be epoch milliseconds');
    return this.enqueue(newId(), device, request, expirationTime);
  }

  async get(tenantId: string, rpcId: string): Promise<RpcRequest> {
    const rpc = await this.store.getRpc(rpcId);
    if (!rpc || rpc.tenantId !== tenantId) throw notFound(`Rpc with id [${rpcId}] is not found`);
    return rpc;
  }

  listForDevice(device: Device, query: PageQuery & { status?: RpcStatus }): Promise<Page<RpcRequest>> {
    return this.store.listRpcForDevice(device.tenantId, device.id, query);
  }

  async delete(tenantId: string, rpcId: string): Promise<RpcRequest> {
    const rpc = await this.get(tenantId, rpcId);
    if (!(await this.store.deleteRpc(tenantId, rpcId))) throw notFound(`Rpc with id [${rpcId}] is not found`);
    return rpc;
  }

  /** Stores the request as QUEUED and asks the node holding the device's sessions to deliver it. */
  private async enqueue(id: string, device: Device, request: { method: string; params: unknown; oneway: boolean }, expirationTime: number): Promise<RpcRequest> {
    const rpc = await this.store.insertRpc({
      id,
      deviceId: device.id,
      tenantId: device.tenantId,
      method: request.method,
      params: JSON.stringify(request.params ?? {}),
      oneway: request.oneway,
      expirationTime,
      status: 'QUEUED',
      response: null,
      createdTime: Date.now(),
    });
    await this.bus.publish(channels.device(device.id), { kind: 'rpc', deviceId: device.id, rpcId: id });
    return rpc;
  }

  async reply(deviceId: string, requestId: number, payload: string): Promise<void> {
    const rpc = await this.store.findRpcByRequestId(deviceId, requestId);
    if (!rpc || rpc.oneway || !['QUEUED', 'SENT', 'DELIVERED'].includes(rpc.status)) return; // TB ignores unknown replies
    await this.finish(rpc, 'SUCCESSFUL', payload);
    await this.bus.publish(channels.rpcReply(rpc.id), { kind: 'rpc-reply', rpcId: rpc.id, status: 'SUCCESSFUL', response: payload });
  }

  /** Writes an end state, with its export outbox row when a rule wants one. */
  private async finish(rpc: RpcRequest, status: 'SUCCESSFUL' | 'TIMEOUT', response: string | null, onlyIf?: readonly RpcStatus[]): Promise<void> {
    const hook = this.onOutcome;
    if (!hook) return this.store.updateRpcStatus(rpc.id, status, response ?? undefined, onlyIf);
    await this.store.transaction(async (tx) => {
      await tx.updateRpcStatus(rpc.id, status, response ?? undefined, onlyIf);
      await hook(tx, rpc, status, response);
    });
  }

  /** Delivers one RPC (or, with rpcId undefined, every pending RPC of the device) to the given sessions. */
  private async deliver(targets: DeviceSession[], rpcId: string | undefined): Promise<void> {
    const live = targets.filter((s) => !s.closed && s.handlers.onRpc);
    if (live.length === 0) return;
    const now = Date.now();
    const pending = rpcId === undefined ? await this.store.listPendingRpc(live[0].identity.deviceId, now) : [await this.store.getRpc(rpcId)];
    for (const rpc of pending) {
      if (!rpc || !['QUEUED', 'SENT'].includes(rpc.status) || rpc.expirationTime <= now) continue;
      await this.deliverOne(live, rpc);
    }
  }

  private async deliverOne(sessions: DeviceSession[], rpc: RpcRequest): Promise<void> {
    const delivery = { requestId: rpc.requestId, method: rpc.method, params: parseJsonOr(rpc.params) };
    const attempts = sessions
      .filter((s) => !s.deliveredRpc?.has(rpc.id))
      .map((s) => {
        (s.deliveredRpc ??= new Set()).add(rpc.id);
        return s.handlers.onRpc!(delivery).catch((err) => {
          s.deliveredRpc?.delete(rpc.id);
          throw err;
        });
      });
    if (attempts.length === 0) return;
    // Promise.any below handles a failed attempt; until then (the update takes a turn of the event loop, longer on the
    // SQLite writer thread) it must not count as an unhandled rejection.
    for (const attempt of attempts) attempt.catch(() => {});
    // Conditional updates: a device may answer before these run, and its SUCCESSFUL must not be overwritten.
    await this.store.updateRpcStatus(rpc.id, 'SENT', undefined, ['QUEUED', 'SENT']);
    try {
      await Promise.any(attempts);
    } catch {
      await this.store.updateRpcStatus(rpc.id, 'QUEUED', undefined, ['SENT']);
      return;
    }
    if (rpc.oneway) await this.finish(rpc, 'SUCCESSFUL', null, ['SENT']);
    else await this.store.updateRpcStatus(rpc.id, 'DELIVERED', undefined, ['SENT']);
    await this.bus.publish(channels.rpcReply(rpc.id), { kind: 'rpc-reply', rpcId: rpc.id, status: 'DELIVERED', response: null });
  }
}
