/**
 * Observers of /attributes and /rpc (RFC 7641) and the notifications sent to them. Notifications are written by
 * the transport itself (node-coap's ObserveWriteStream sends notifications of NON registrations as ACKs and keeps
 * no sequence across re-registrations), with RFC 7252 retransmission for CON ones, one at a time per client
 * (RFC 7641 §4.5.2), block-wise when large (RFC 7959 §2.6, notify-blocks.ts), and a periodic CON check of
 * observers that hear nothing (RFC 7641 §4.5).
 */
import { randomInt } from 'node:crypto';
import { DEFAULT_BLOCK_SIZE, NotificationBlocks } from './notify-blocks.ts';
import { encodeMessage, type CoapReply } from './wire.ts';

/** Where a client is. */
export interface Endpoint {
  address: string;
  port: number;
}

/** Timing of notifications; RFC 7252 §4.8 defaults unless a test shortens them. */
export interface ObserveTiming {
  /** ACK_TIMEOUT, ms (RFC 7252 §4.8: 2000). */
  ackTimeoutMs: number;
  /** MAX_RETRANSMIT (RFC 7252 §4.8: 4). */
  maxRetransmit: number;
  /**
   * Time-to-live of an observer registered with NON: its notifications carry Max-Age = the time left, and it is
   * dropped when the TTL runs out without a re-registration or an ACK. After half the TTL without a sign of life,
   * the next notification goes CON so a live client proves itself (RFC 7641 §4.5).
   */
  nonObserverTtlMs: number;
  /**
   * RFC 7641 §4.5: a CON observer that got no acknowledged notification for this long is sent a CON notification
   * of the current state; one that does not ACK it is dropped (default 24 h, the RFC's upper bound).
   */
  checkIntervalMs: number;
}

export const DEFAULT_OBSERVE_TIMING: ObserveTiming = { ackTimeoutMs: 2000, maxRetransmit: 4, nonObserverTtlMs: 3_600_000, checkIntervalMs: 86_400_000 };

/** One registration: an endpoint's token observing one resource of one device. */
export interface Observer {
  readonly endpoint: Endpoint;
  readonly token: Buffer;
  readonly resource: 'attributes' | 'rpc';
  readonly deviceId: string;
  /** Type of the registering request: CON observers get CON notifications. */
  readonly confirmable: boolean;
  /** Uri-Path of the registration (`api/v1/{token}/attributes`): block requests for notifications use it. */
  readonly path: string;
  /** RFC 7959 §2.6: the block size the registration asked for (Block2 SZX), else DEFAULT_BLOCK_SIZE. */
  readonly blockSize: number;
  lastHeard: number;
  closed: boolean;
  /** Runs once when the observer goes away (closes its core session). */
  onClose?: () => void;
  /** The current state, sent as the RFC 7641 §4.5 liveness check. */
  current?: () => Promise<CoapReply>;
  checking?: boolean;
}

interface Outstanding {
  observer: Observer;
  confirmable: boolean;
  timer?: NodeJS.Timeout;
  settle?: (err?: Error) => void;
}

const endpointKey = (e: Endpoint) => `${e.address}:${e.port}`;
const observerKey = (e: Endpoint, token: Buffer) => `${endpointKey(e)}#${token.toString('hex')}`;

/** All observers of this transport. */
export class ObserveRegistry {
  private readonly byToken = new Map<string, Observer>();
  private readonly byResource = new Map<string, Observer>();
  /** Notifications a client may still ACK or RST, by endpoint/Message ID. */
  private readonly outstanding = new Map<string, Outstanding>();
  private readonly recentNon = new Map<Observer, string[]>();
  /** Unacknowledged CON notifications per observer. */
  private readonly pendingCon = new Map<Observer, Set<string>>();
  /** RFC 7641 §4.5.2: per client, the tail of its notifications; the next one starts when the previous is done. */
  private readonly lanes = new Map<string, Promise<void>>();
  /** Large notifications' representations, for the client's block requests (RFC 7959 §2.6). */
  readonly blocks: NotificationBlocks;
  private messageId = randomInt(0, 0x10000);
  /** RFC 7641 §4.4: one increasing sequence for all notifications, so a re-registration never goes backwards. */
  private sequence = 1;

  constructor(
    private readonly send: (datagram: Buffer, to: Endpoint) => void,
    private readonly timing: ObserveTiming,
    private readonly now: () => number = Date.now,
  ) {
    // A client fetches the remaining blocks within about one exchange of retransmissions.
    this.blocks = new NotificationBlocks(timing.ackTimeoutMs * 2 ** timing.maxRetransmit);
  }

  get size(): number {
    return this.byToken.size;
  }

  nextSequence(): number {
    this.sequence = (this.sequence + 1) & 0xffffff;
    return this.sequence;
  }

  /**
   * Adds an observer. RFC 7641 §4.1: the same endpoint and token replaces its old entry. spec §8.4: a new token
   * from the same endpoint for the same device and resource ends the old observation with 2.02 DELETED.
   */
  register(o: Omit<Observer, 'lastHeard' | 'closed' | 'blockSize'> & { blockSize?: number }): Observer {
    const observer: Observer = { ...o, blockSize: Math.min(o.blockSize ?? DEFAULT_BLOCK_SIZE, DEFAULT_BLOCK_SIZE), lastHeard: this.now(), closed: false };
    const same = this.byToken.get(observerKey(o.endpoint, o.token));
    if (same) this.remove(same);
    const resourceKey = `${endpointKey(o.endpoint)}|${o.deviceId}|${o.resource}`;
    const previous = this.byResource.get(resourceKey);
    if (previous) {
      this.send(encodeMessage({ type: 'NON', messageId: this.allocateId(), token: previous.token, reply: { code: '2.02' } }), previous.endpoint);
      this.remove(previous);
    }
    this.byToken.set(observerKey(o.endpoint, o.token), observer);
    this.byResource.set(resourceKey, observer);
    return observer;
  }

  /** RFC 7641 §3.6: GET with Observe=1 (deregister). True when there was such an observer. */
  cancel(endpoint: Endpoint, token: Buffer): boolean {
    const o = this.byToken.get(observerKey(endpoint, token));
    if (!o) return false;
    this.remove(o);
    return true;
  }

  /**
   * The registration's answer (RFC 7641 §3.2, its first notification) with sequence number `observe`, as its first
   * block when large (RFC 7959 §2.6). The client's next notification waits until it has fetched the rest.
   */
  initial(o: Observer, reply: CoapReply, observe: number): CoapReply {
    const shaped = this.blocks.shape(NotificationBlocks.key(o.endpoint, o.path), reply, observe, o.blockSize);
    this.enqueue(o.endpoint, () => shaped.fetched);
    return shaped.reply;
  }

  /**
   * Sends one notification. Resolves when it reached the client (CON: ACKed; NON: sent). Rejects and drops the
   * observer on RST (RFC 7641 §3.6) or when a CON is never acknowledged (RFC 7641 §4.5).
   * RFC 7641 §4.5.2: a client has at most one CON notification outstanding; later ones wait in order. They are not
   * merged into the newest state: notifications here are attribute deltas and RPCs, each of which must arrive.
   */
  notify(o: Observer, reply: CoapReply): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.enqueue(o.endpoint, () => {
        let fetched = Promise.resolve();
        const delivered = this.transmit(o, reply, (f) => (fetched = f));
        delivered.then(resolve, reject);
        // RFC 7959 §2.6: the next notification would replace the representation whose blocks are being fetched.
        return delivered.then(
          () => fetched,
          () => {},
        );
      });
    });
  }

  /** Runs `job` after the client's earlier notifications are done (RFC 7641 §4.5.2). */
  private enqueue(endpoint: Endpoint, job: () => Promise<void>): void {
    const key = endpointKey(endpoint);
    const tail = (this.lanes.get(key) ?? Promise.resolve()).then(job).catch(() => {});
    this.lanes.set(key, tail);
    void tail.then(() => {
      if (this.lanes.get(key) === tail) this.lanes.delete(key);
    });
  }

  private transmit(o: Observer, full: CoapReply, onFetched: (fetched: Promise<void>) => void): Promise<void> {
    if (o.closed) return Promise.reject(new Error('observer is gone'));
    const age = this.now() - o.lastHeard;
    if (!o.confirmable && age >= this.timing.nonObserverTtlMs) {
      this.remove(o);
      return Promise.reject(new Error('observer expired'));
    }
    const confirmable = o.confirmable || age >= this.timing.nonObserverTtlMs / 2;
    const messageId = this.allocateId();
    const observe = this.nextSequence();
    const shaped = this.blocks.shape(NotificationBlocks.key(o.endpoint, o.path), full, observe, o.blockSize);
    onFetched(shaped.fetched);
    const reply = shaped.reply;
    const maxAge = o.confirmable ? undefined : Math.max(1, Math.floor((this.timing.nonObserverTtlMs - age) / 1000));
    const datagram = encodeMessage({ type: confirmable ? 'CON' : 'NON', messageId, token: o.token, reply, observe, maxAge });
    const key = `${endpointKey(o.endpoint)}/${messageId}`;
    if (!confirmable) {
      this.rememberNon(o, key);
      this.send(datagram, o.endpoint);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const entry: Outstanding = { observer: o, confirmable: true };
      entry.settle = (err) => {
        clearTimeout(entry.timer);
        this.outstanding.delete(key);
        this.pendingCon.get(o)?.delete(key);
        if (err) reject(err);
        else resolve();
      };
      this.outstanding.set(key, entry);
      let keys = this.pendingCon.get(o);
      if (!keys) this.pendingCon.set(o, (keys = new Set()));
      keys.add(key);
      // RFC 7252 §4.2: initial timeout random in [ACK_TIMEOUT, ACK_TIMEOUT * 1.5], doubled per retransmission.
      let timeout = this.timing.ackTimeoutMs * (1 + Math.random() * 0.5);
      let attempts = 0;
      const transmit = () => {
        if (o.closed) return entry.settle!(new Error('observer is gone'));
        if (attempts > this.timing.maxRetransmit) {
          this.remove(o);
          return entry.settle!(new Error('notification was not acknowledged'));
        }
        attempts++;
        this.send(datagram, o.endpoint);
        entry.timer = setTimeout(transmit, timeout);
        timeout *= 2;
      };
      transmit();
    });
  }

  /** Handles an ACK or RST from a client. True when it answered one of our notifications. */
  onAckOrReset(endpoint: Endpoint, messageId: number, reset: boolean): boolean {
    const key = `${endpointKey(endpoint)}/${messageId}`;
    const entry = this.outstanding.get(key);
    if (!entry) return false;
    if (reset) {
      this.remove(entry.observer); // RFC 7641 §3.6: RST in reply to a notification cancels the observation
      entry.settle?.(new Error('client rejected the notification'));
      this.outstanding.delete(key);
    } else {
      entry.observer.lastHeard = this.now();
      entry.settle?.();
    }
    return true;
  }

  /**
   * Drops NON observers whose time-to-live ran out, and checks CON observers that heard nothing for
   * `checkIntervalMs` (RFC 7641 §4.5: a CON notification at least every 24 h; notify() drops them without an ACK).
   */
  sweep(): void {
    const now = this.now();
    for (const o of [...this.byToken.values()]) {
      if (!o.confirmable) {
        if (now - o.lastHeard >= this.timing.nonObserverTtlMs) this.remove(o);
      } else if (!o.checking && o.current && now - o.lastHeard >= this.timing.checkIntervalMs) {
        o.checking = true;
        void o
          .current()
          .then((reply) => this.notify(o, reply))
          .catch(() => {}) // not acknowledged: notify() dropped the observer; a failed read is retried next sweep
          .finally(() => (o.checking = false));
      }
    }
  }

  /** Drops every observer (shutdown). */
  close(): void {
    for (const o of [...this.byToken.values()]) this.remove(o);
    this.blocks.clear();
  }

  remove(o: Observer): void {
    if (o.closed) return;
    o.closed = true;
    const tokenKey = observerKey(o.endpoint, o.token);
    if (this.byToken.get(tokenKey) === o) this.byToken.delete(tokenKey);
    const resourceKey = `${endpointKey(o.endpoint)}|${o.deviceId}|${o.resource}`;
    if (this.byResource.get(resourceKey) === o) this.byResource.delete(resourceKey);
    for (const key of this.recentNon.get(o) ?? []) this.outstanding.delete(key);
    this.recentNon.delete(o);
    for (const key of [...(this.pendingCon.get(o) ?? [])]) this.outstanding.get(key)?.settle?.(new Error('observer is gone'));
    this.pendingCon.delete(o);
    this.blocks.forget(NotificationBlocks.key(o.endpoint, o.path));
    o.onClose?.();
  }

  /** Keeps the last few NON notification ids so an RST to one of them still cancels (RFC 7641 §3.6). */
  private rememberNon(o: Observer, key: string): void {
    const keys = this.recentNon.get(o) ?? [];
    keys.push(key);
    this.outstanding.set(key, { observer: o, confirmable: false });
    if (keys.length > 8) this.outstanding.delete(keys.shift()!);
    this.recentNon.set(o, keys);
  }

  private allocateId(): number {
    this.messageId = (this.messageId + 1) & 0xffff;
    return this.messageId;
  }
}
