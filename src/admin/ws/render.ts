/**
 * v1 replies of the WebSocket telemetry API (spec §3.1): `{"subscriptionId","errorCode","errorMsg","data",
 * "latestValues"}`, values as Java's `toString` renders them, keys in Java's sorted-map order.
 */
import type { KvValue } from '../../core/model.ts';
import { javaDoubleString, stringValue } from '../kv-values.ts';

/** One `[ts, value]` pair; `null` is a missing value. */
export type TsPair = [number, string | null];

/** Subscription error codes (spec §3.5, TB SubscriptionErrorCode). */
export const WS_ERROR = { NO_ERROR: 0, INTERNAL_ERROR: 1, BAD_REQUEST: 2, UNAUTHORIZED: 3 } as const;

export interface V1Reply {
  subscriptionId: number;
  errorCode: number;
  errorMsg: string | null;
  data: Record<string, TsPair[]> | null;
  latestValues: Record<string, number>;
}

/** Collects pairs per key, in arrival order, for one reply. */
export class ReplyData {
  private readonly pairs = new Map<string, TsPair[]>();
  /** Pairs held, all keys together. */
  size = 0;

  add(key: string, ts: number, value: KvValue | null): void {
    this.addPair(key, [ts, value === null ? null : stringValue(value)]);
  }

  /** A point of core's flat live format (`type`, `value` as on the bus), rendered without building a KvValue. */
  addFlat(key: string, ts: number, type: string, value: string | number | boolean): void {
    let text: string;
    if (type === 'DOUBLE') text = javaDoubleString(value as number);
    else if (type === 'BOOLEAN') text = value ? 'true' : 'false';
    else text = String(value); // LONG (number or decimal text), STRING, JSON
    this.addPair(key, [ts, text]);
  }

  addPair(key: string, pair: TsPair): void {
    let list = this.pairs.get(key);
    if (!list) this.pairs.set(key, (list = []));
    list.push(pair);
    this.size++;
  }

  /** Appends every pair of `other` after this one's, key by key (one frame for several commits). */
  append(other: ReplyData): void {
    for (const [key, pairs] of other.pairs) for (const pair of pairs) this.addPair(key, pair);
  }

  get empty(): boolean {
    return this.pairs.size === 0;
  }

  /** Each key with its pairs, in arrival order of the keys. */
  entries(): IterableIterator<[string, TsPair[]]> {
    return this.pairs.entries();
  }

  /**
   * The data reply's JSON text. Not `JSON.stringify(this.reply(..))`: an object moves digit-only keys first and drops
   * a key named `__proto__`, where ThingsBoard's sorted map keeps Java's string order for every key (spec §3.1), as
   * {@link LiveFrame} does for the updates that follow.
   */
  text(subscriptionId: number): string {
    let data = '';
    let latest = '';
    for (const key of [...this.pairs.keys()].sort()) {
      const list = this.pairs.get(key)!;
      const quoted = JSON.stringify(key);
      const sep = data === '' ? '' : ',';
      data += `${sep}${quoted}:${JSON.stringify(list)}`;
      latest += `${sep}${quoted}:${list[list.length - 1][0]}`; // TB: the ts of the last pair, not the newest (spec §6.5)
    }
    return `{"subscriptionId":${subscriptionId},"errorCode":${WS_ERROR.NO_ERROR},"errorMsg":null,"data":{${data}},"latestValues":{${latest}}}`;
  }

  /** The data reply of a subscription or history command. */
  reply(subscriptionId: number): V1Reply {
    const data: Record<string, TsPair[]> = {};
    const latestValues: Record<string, number> = {};
    for (const key of [...this.pairs.keys()].sort()) {
      const list = this.pairs.get(key)!;
      data[key] = list;
      latestValues[key] = list[list.length - 1][0]; // TB: the ts of the last pair, not the newest (spec §6.5)
    }
    return { subscriptionId, errorCode: WS_ERROR.NO_ERROR, errorMsg: null, data, latestValues };
  }
}

/** An error reply for one command. */
export function errorReply(subscriptionId: number, errorCode: number, errorMsg: string): V1Reply {
  return { subscriptionId, errorCode, errorMsg, data: null, latestValues: {} };
}

/** TB: a frame that fails to parse is answered with subscriptionId 1, whatever its commands (spec §2.3). */
export const PARSE_ERROR_REPLY = errorReply(1, WS_ERROR.BAD_REQUEST, 'Failed to parse the payload');
