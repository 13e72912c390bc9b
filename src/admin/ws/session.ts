/**
 * One WebSocket telemetry session: authentication (query token or first-frame `authCmd`), command dispatch,
 * its subscriptions, the bounded outbound queue, keep-alive and the close codes of spec §3.6.
 */
import type { WebSocket, RawData } from 'ws';
import type { HistoryCmd, SubscriptionCmd, WsCommand, WsFrame } from './commands.ts';
import { FrameParseError, parseGeneralFrame, parseLegacyFrame } from './commands.ts';
import type { WsContext } from './context.ts';
import { errorReply, PARSE_ERROR_REPLY, WS_ERROR, type V1Reply } from './render.ts';
import { LiveSubscription } from './subscription.ts';
import { attributeScopes, attributesSnapshot, historyReply, resolveTarget, timeseriesSnapshot, WsCommandError } from './targets.ts';
import { FleetgateError } from '../../core/errors.ts';
import { verifyWsToken, type WsIdentity } from './ws-auth.ts';

/** `/api/ws` (GENERAL) or the deprecated `/api/ws/plugins/telemetry` (TELEMETRY). */
export type WsSessionKind = 'GENERAL' | 'TELEMETRY';

/** Close codes (spec §3.6). */
export const CLOSE = { unsupported: 1003, badData: 1007, policy: 1008, internal: 1011, serverGoingAway: 1001, noPong: 4500 } as const;

export const CLOSE_REASON = {
  binary: 'Binary messages not supported',
  authMissing: 'Auth cmd is missing',
  unparseable: 'The given string value cannot be transformed to Json object: ',
  queueFull: 'Max pending updates limit reached!',
  commandsQueueFull: 'Max pending commands limit reached!',
  userSessions: 'Max user sessions limit reached',
  tokenExpired: 'JWT Token expired',
  shutdown: 'Server is shutting down',
} as const;

/** A close reason may hold at most 123 UTF-8 bytes (RFC 6455 §5.5); longer ones are cut. */
function closeReason(text: string): string {
  let out = text;
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1);
  return out;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** Every reply is a text frame, bytes (a live update's UTF-8 JSON) included (spec §3.1; binary frames are not ours). */
const TEXT_FRAME = { binary: false } as const;

export class WsSession {
  private identity: WsIdentity | undefined;
  /** An authCmd.apiKey is being checked; frames meanwhile queue behind it. */
  private authenticating = false;
  private readonly subscriptions = new Map<number, LiveSubscription>();
  /** Frames handed to the socket and not yet written out. */
  private pending = 0;
  private closed = false;
  private counted = false;
  private lastPong = Date.now();
  private readonly timers: NodeJS.Timeout[] = [];
  /** Frames run one after the other, so commands execute in the order they were sent. */
  private work: Promise<void> = Promise.resolve();
  /** Frames received and not yet run: bounded like the outbound queue, so a flood of commands cannot pile up. */
  private queuedFrames = 0;

  constructor(
    private readonly socket: WebSocket,
    private readonly kind: WsSessionKind,
    private readonly ctx: WsContext,
    /** The client's address, for the audit of an API key's use. */
    private readonly address?: string,
  ) {}

  /** Starts the session; `token` is the query token, if any (spec §1.2 A). */
  begin(token: string | undefined): void {
    this.ctx.sessions.add(this);
    this.socket.on('message', (data, isBinary) => this.onFrame(data, isBinary));
    this.socket.on('close', () => this.cleanup());
    this.socket.on('error', (err) => this.ctx.logger.debug({ err }, 'websocket error')); // ws closes with 1009/1002 itself
    this.socket.on('pong', () => (this.lastPong = Date.now()));
    if (token) {
      const result = verifyWsToken(this.ctx.app, token);
      if ('reason' in result) return this.close(CLOSE.internal, result.reason); // TB: 1011 for a bad query token
      this.admit(result);
      return;
    }
    // spec §6.2: a real timer (TB evicts lazily).
    this.timer(setTimeout(() => this.identity || this.close(CLOSE.policy, ''), this.ctx.limits.authTimeoutMs));
  }

  get subscriptionCount(): number {
    return this.subscriptions.size;
  }

  /** Closes the socket with a code and reason, then drops it if the peer does not finish the handshake soon. */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.ctx.metrics?.wsClosed(String(code));
    this.cleanup();
    try {
      this.socket.close(code, closeReason(reason));
    } catch {
      this.socket.terminate();
    }
    setTimeout(() => this.socket.terminate(), 1000).unref();
  }

  private timer(t: NodeJS.Timeout): void {
    t.unref();
    this.timers.push(t);
  }

  private cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    for (const sub of this.subscriptions.values()) sub.stop();
    this.subscriptions.clear();
    if (this.counted && this.identity) this.ctx.userSessions.release(this.identity.principal.userId);
    this.ctx.sessions.delete(this);
  }

  /** An `authCmd.apiKey` (ThingsBoard 4.3): the key's user, or close 1007 with the reason it was refused. */
  private async admitApiKey(value: string): Promise<void> {
    try {
      const user = await this.ctx.core.userSecurity.authenticateKey(value, { transport: 'admin', address: this.address });
      if (!this.closed) this.admit({ principal: { userId: user.id, tenantId: user.tenantId, email: user.email, authority: user.authority }, expiresAt: undefined });
    } catch (err) {
      this.close(CLOSE.badData, err instanceof FleetgateError ? err.message : 'API key is invalid');
    } finally {
      this.authenticating = false;
    }
  }

  private admit(identity: WsIdentity): boolean {
    if (!this.ctx.userSessions.acquire(identity.principal.userId, this.ctx.limits.maxSessionsPerUser)) {
      this.close(CLOSE.policy, CLOSE_REASON.userSessions);
      return false;
    }
    this.counted = true;
    this.identity = identity;
    this.lastPong = Date.now();
    // fleetgate: a session ends when its token does (TB lets it outlive the token, spec §6.2).
    if (identity.expiresAt !== undefined) {
      this.timer(setTimeout(() => this.close(CLOSE.policy, CLOSE_REASON.tokenExpired), Math.min(MAX_TIMER_MS, Math.max(0, identity.expiresAt - Date.now()))));
    }
    const pingEvery = Math.max(10, Math.floor(this.ctx.limits.pingTimeoutMs / 3));
    const ping = setInterval(() => {
      if (Date.now() - this.lastPong >= this.ctx.limits.pingTimeoutMs) return this.close(CLOSE.noPong, '');
      this.socket.ping();
    }, pingEvery);
    this.timer(ping);
    return true;
  }

  private onFrame(data: RawData, isBinary: boolean): void {
    if (this.closed) return;
    if (isBinary) return this.close(CLOSE.unsupported, CLOSE_REASON.binary);
    const text = Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8');
    let frame: WsFrame;
    try {
      const json: unknown = JSON.parse(text);
      frame = this.kind === 'GENERAL' ? parseGeneralFrame(json) : parseLegacyFrame(json);
    } catch (err) {
      // Never the frame itself (nor a JSON error quoting it): a first frame carries the token.
      this.ctx.logger.debug({ reason: err instanceof FrameParseError ? err.message : 'not JSON' }, 'websocket frame refused');
      if (!this.identity) return this.close(CLOSE.badData, CLOSE_REASON.unparseable + text);
      return this.send(PARSE_ERROR_REPLY);
    }
    if (!this.identity && !this.authenticating) {
      if (!frame.authCmd) return this.close(CLOSE.policy, CLOSE_REASON.authMissing);
      // spec §1.2 B: a non-empty apiKey wins over the token; it is checked in the database, so the commands wait for it.
      const apiKey = frame.authCmd.apiKey;
      if (apiKey) {
        this.authenticating = true;
        this.work = this.work.then(() => this.admitApiKey(apiKey));
      } else {
        const result = verifyWsToken(this.ctx.app, frame.authCmd.token);
        if ('reason' in result) return this.close(CLOSE.badData, result.reason);
        if (!this.admit(result)) return;
      }
    }
    if (this.queuedFrames >= this.ctx.limits.maxQueuePerSession) return this.close(CLOSE.policy, CLOSE_REASON.commandsQueueFull);
    this.queuedFrames++;
    const cmds = frame.cmds;
    this.work = this.work.then(async () => {
      for (const cmd of cmds) {
        if (this.closed) break;
        await this.run(cmd).catch((err) => this.fail(cmd.cmdId, err));
      }
      this.queuedFrames--;
    });
  }

  private fail(cmdId: number, err: unknown): void {
    if (err instanceof WsCommandError) return this.send(errorReply(cmdId, err.errorCode, err.message));
    this.ctx.logger.warn({ err, cmdId }, 'websocket command failed');
    this.send(errorReply(cmdId, WS_ERROR.INTERNAL_ERROR, 'Internal Server error!'));
  }

  private async run(cmd: WsCommand): Promise<void> {
    if (cmd.type === 'UNSUPPORTED') throw new WsCommandError(WS_ERROR.INTERNAL_ERROR, `Command type ${cmd.name} is not supported`);
    if (cmd.type === 'TIMESERIES_HISTORY') return this.history(cmd);
    return this.subscribe(cmd);
  }

  private async history(cmd: HistoryCmd): Promise<void> {
    const target = await resolveTarget(this.ctx.core, this.identity!.principal, cmd);
    const data = await historyReply(this.ctx.core, target, cmd).catch((err) => {
      if (err instanceof WsCommandError) throw err;
      this.ctx.logger.warn({ err }, 'websocket history read failed');
      throw new WsCommandError(WS_ERROR.INTERNAL_ERROR, 'Failed to fetch data!');
    });
    this.send(data.text(cmd.cmdId));
  }

  private async subscribe(cmd: SubscriptionCmd): Promise<void> {
    if (cmd.unsubscribe) {
      // spec §6.11: an empty entityId cancels everything (the session stays usable); an unknown cmdId is ignored.
      if (!cmd.entityId) for (const id of [...this.subscriptions.keys()]) this.cancel(id);
      else this.cancel(cmd.cmdId);
      return;
    }
    const target = await resolveTarget(this.ctx.core, this.identity!.principal, cmd);
    if (this.closed) return;
    // fleetgate: a reused cmdId replaces its subscription (TB keeps both, spec §4).
    this.cancel(cmd.cmdId);
    const maxSubscriptions = this.ctx.limits.maxSubscriptionsPerSession;
    if (maxSubscriptions > 0 && this.subscriptions.size >= maxSubscriptions) {
      throw new WsCommandError(WS_ERROR.BAD_REQUEST, `Max subscriptions per session limit reached (${this.ctx.limits.maxSubscriptionsPerSession})`);
    }
    const selection =
      cmd.type === 'TIMESERIES'
        ? ({ kind: 'TIMESERIES', target, latestOnly: cmd.scope === 'LATEST_TELEMETRY' } as const)
        : ({ kind: 'ATTRIBUTES', target, scopes: attributeScopes(cmd.scope) } as const);
    const sub = new LiveSubscription(cmd.cmdId, selection, (reply, committedAt) => this.send(reply, committedAt), {
      overflow: () => this.overflow(),
      maxHeld: this.ctx.limits.maxQueuePerSession,
      updateIntervalMs: this.ctx.limits.updateIntervalMs,
      pacer: this.ctx.pacer,
    });
    this.subscriptions.set(cmd.cmdId, sub);
    const failed = cmd.type === 'TIMESERIES' ? 'Failed to fetch data!' : 'Failed to fetch attributes!';
    const read = selection.kind === 'TIMESERIES' ? () => timeseriesSnapshot(this.ctx.core, target, cmd) : () => attributesSnapshot(this.ctx.core, target, selection.scopes);
    try {
      await sub.start(this.ctx.core.live, read);
    } catch (err) {
      if (this.subscriptions.get(cmd.cmdId) === sub) this.subscriptions.delete(cmd.cmdId);
      if (err instanceof WsCommandError) throw err;
      this.ctx.logger.warn({ err }, 'websocket snapshot read failed');
      throw new WsCommandError(WS_ERROR.INTERNAL_ERROR, failed);
    }
  }

  private cancel(cmdId: number): void {
    const sub = this.subscriptions.get(cmdId);
    if (!sub) return;
    sub.stop();
    this.subscriptions.delete(cmdId);
  }

  private overflow(): void {
    this.close(CLOSE.policy, CLOSE_REASON.queueFull);
  }

  /**
   * Queues one reply (an object, or a reply already rendered to its JSON text or its UTF-8 bytes); a reader that lets
   * `maxQueuePerSession` frames pile up is closed (spec §1.4).
   */
  private send(reply: V1Reply | string | Buffer, committedAt?: number): void {
    if (this.closed) return;
    if (this.pending >= this.ctx.limits.maxQueuePerSession) return this.overflow();
    this.pending++;
    const data = typeof reply === 'string' || Buffer.isBuffer(reply) ? reply : JSON.stringify(reply);
    this.socket.send(data, TEXT_FRAME, (err) => {
      this.pending--;
      if (err && !this.closed) this.close(CLOSE.noPong, ''); // TB: a failed send closes with 4500
    });
    this.ctx.metrics?.wsMessageSent(committedAt === undefined ? undefined : Date.now() - committedAt);
  }
}
