/**
 * One live v1 subscription (TIMESERIES or ATTRIBUTES) of a session: registers with core's live updates first, then
 * sends the snapshot, then every committed change that matches (spec §3.2, §3.3). Changes that arrive while the
 * snapshot is read are held and sent after it (spec §6.13: register first, buffer until the snapshot is out).
 */
import { isDeletionPoint, LIVE_POINT_STRIDE, REWRITTEN_TYPE, type LiveChange, type LiveUpdatesApi } from '../../core/live-updates.ts';
import type { AttributeScope } from '../../core/model.ts';
import type { FramePacer } from './frame-pacer.ts';
import { LiveFrame } from './live-frame.ts';
import type { ReplyData, V1Reply } from './render.ts';
import type { Target } from './targets.ts';

/**
 * How a subscription hands replies to its session: a reply object, or a reply already rendered to its JSON text (as
 * a string, or as UTF-8 bytes for live updates); `committedAt` (epoch ms, the oldest commit it carries) is set on live
 * updates.
 */
export type ReplySink = (reply: V1Reply | string | Buffer, committedAt?: number) => void;

/** What a subscription selects from a device's changes. */
export type Selection =
  | { kind: 'TIMESERIES'; target: Target; /** TB LATEST_TELEMETRY: drop points older than the last one sent per key. */ latestOnly: boolean }
  | { kind: 'ATTRIBUTES'; target: Target; scopes: AttributeScope[] };

/** A gathered frame is sent early once it holds this many points. */
const MAX_GATHERED_POINTS = 10_000;

export class LiveSubscription {
  private stopWatching: (() => void) | undefined;
  /** Changes received before the snapshot went out; undefined once live. */
  private held: LiveChange[] | undefined = [];
  private stopped = false;

  /**
   * The next frame: the selected points of every change since the last frame, rendered as they arrive into byte
   * buffers the garbage collector never copies (held as objects for up to an interval, they cost it more than
   * rendering them).
   */
  private readonly frame = new LiveFrame();
  /** When the oldest change in `frame` was committed (epoch ms, the latency metric). */
  private frameCommittedAt = 0;
  /** When the last live frame went out (epoch ms), for `updateIntervalMs`. */
  private lastSentAt = 0;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly cmdId: number,
    private readonly selection: Selection,
    private readonly send: ReplySink,
    private readonly options: {
      /** Called when more changes are held than a session may queue (the session closes as a slow reader). */
      overflow: () => void;
      maxHeld: number;
      /**
       * Least time between two live frames, ms. A change after a quieter spell goes out at once; changes that come
       * sooner wait for the rest of the interval and go out together in one frame, every point kept in order.
       * 0: a frame per commit (ThingsBoard).
       */
      updateIntervalMs: number;
      /** The node's frame budget: when given, it sets the interval (never below `updateIntervalMs`). */
      pacer?: FramePacer;
    },
  ) {}

  /** Registers, sends the snapshot read by `snapshot`, then the held changes. Rejects (and stops) if the read fails. */
  async start(live: LiveUpdatesApi, snapshot: () => Promise<ReplyData>): Promise<void> {
    const stop = await live.watch(this.selection.target.deviceId, (change) => this.onChange(change));
    if (this.stopped) return stop();
    this.stopWatching = stop;
    let data: ReplyData;
    try {
      data = await snapshot();
    } catch (err) {
      this.stop();
      throw err;
    }
    if (this.stopped) return;
    if (this.selection.kind === 'TIMESERIES' && this.selection.latestOnly) {
      // The LATEST_TELEMETRY filter starts from the snapshot: the frame keeps each key's last ts (LiveFrame.lastTs).
      for (const [key, pairs] of data.entries()) for (const [ts, value] of pairs) if (value !== null) this.frame.seedLatest(key, ts);
    }
    this.send(data.text(this.cmdId));
    const held = this.held ?? [];
    this.held = undefined;
    for (const change of held) this.onChange(change);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.flushTimer);
    this.frame.clear();
    this.options.pacer?.forget(this);
    this.held = undefined;
    this.stopWatching?.();
    this.stopWatching = undefined;
  }

  private onChange(change: LiveChange): void {
    if (this.stopped) return;
    if (this.held) {
      if (this.held.length >= this.options.maxHeld) return this.options.overflow();
      this.held.push(change);
      return;
    }
    const wasEmpty = this.frame.empty;
    if (this.selection.kind === 'TIMESERIES') this.selectTelemetry(change, this.frame);
    else this.selectAttributes(change, this.selection.scopes, this.frame);
    if (this.frame.empty) return; // nothing of this change is selected
    if (wasEmpty) this.frameCommittedAt = change.committedAt;
    if (this.flushTimer) {
      // A frame is already waiting for its turn: this change goes out with it.
      if (this.frame.size >= MAX_GATHERED_POINTS) this.flush();
      return;
    }
    const interval = this.options.pacer?.intervalMs ?? this.options.updateIntervalMs;
    const wait = interval <= 0 ? 0 : this.lastSentAt + interval - Date.now();
    if (wait <= 0) return this.sendFrame();
    this.flushTimer = setTimeout(() => this.flush(), wait);
    this.flushTimer.unref();
  }

  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.stopped && !this.frame.empty) this.sendFrame();
  }

  /** Sends the frame gathered so far. */
  private sendFrame(): void {
    if (this.options.updateIntervalMs > 0) {
      this.lastSentAt = Date.now();
      this.options.pacer?.sent(this, this.lastSentAt);
    }
    this.send(this.frame.bytes(this.cmdId), this.frameCommittedAt);
  }

  /** TB: only the keys of that save (∩ subscribed keys), every point in save order (spec §3.3). */
  private selectTelemetry(change: LiveChange, data: LiveFrame): void {
    const keys = this.selection.target.keys;
    const latestOnly = this.selection.kind === 'TIMESERIES' && this.selection.latestOnly;
    const points = change.telemetry;
    for (let i = 0; i < points.length; i += LIVE_POINT_STRIDE) {
      const ts = points[i] as number;
      const key = points[i + 1] as string;
      if (keys && !keys.has(key)) continue;
      const type = points[i + 2] as string;
      if (isDeletionPoint(type)) {
        // TB: a deleted latest value ([0, ""]) or the one rewritten from history always passes, and becomes the latest
        // (the frame's last ts of the key, which the LATEST filter reads).
        if (type.startsWith(REWRITTEN_TYPE)) data.addFlat(key, ts, type.slice(REWRITTEN_TYPE.length), points[i + 3]);
        else data.addDeleted(key);
      } else if (latestOnly) data.addFlatIfNotOlder(key, ts, type, points[i + 3]); // TB: equal passes, older is dropped
      else data.addFlat(key, ts, type, points[i + 3]);
    }
  }

  /** TB: no timestamp filter; a scoped subscription sees its scope only; a deleted key reads [0, ""]. */
  private selectAttributes(change: LiveChange, scopes: AttributeScope[], data: LiveFrame): void {
    const keys = this.selection.target.keys;
    for (const write of change.attributes) {
      if (!scopes.includes(write.scope)) continue;
      for (const e of write.entries) {
        if (keys && !keys.has(e.key)) continue;
        if (e.value === null) data.addDeleted(e.key);
        else data.add(e.key, write.ts, e.value);
      }
    }
  }
}
