/**
 * The Bus contract: one suite every Bus implementation must pass (in-memory and Redis). "Nodes" are buses that
 * share one medium; the in-memory bus has a single node, so there every node is the same bus.
 *
 * Absence is proven without timing: after publishing what must not arrive, the test publishes a fence message on a
 * channel it listens to from the same publisher; messages from one publisher arrive in order, so once the fence is
 * in, anything published before it has arrived if it ever will.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { channels, type Bus, type BusMessage } from '../../src/core/ports/bus.ts';

/** A medium under test: `node()` gives one more node's bus on it. */
export interface OpenedBus {
  node(): Promise<Bus>;
  close(): Promise<void>;
}

/** Collects messages of one subscription and lets a test wait for the n-th. */
export class Inbox {
  readonly messages: BusMessage[] = [];
  private waiters: { n: number; resolve: () => void }[] = [];
  readonly handler = (m: BusMessage) => {
    this.messages.push(m);
    this.waiters = this.waiters.filter((w) => (this.messages.length >= w.n ? (w.resolve(), false) : true));
  };
  /** Resolves once `n` messages have arrived (the test runner's timeout bounds the wait). */
  until(n: number): Promise<void> {
    if (this.messages.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
}

const attrs = (n: number): BusMessage => ({ kind: 'attributes', deviceId: 'd', update: { n } });

/** Publishes a fence from `publisher` and waits for it on `listener`: everything published before has arrived. */
async function fence(publisher: Bus, listener: Bus): Promise<void> {
  const inbox = new Inbox();
  const channel = `fence:${randomUUID()}`;
  const unsubscribe = await listener.subscribe(channel, inbox.handler);
  await publisher.publish(channel, attrs(0));
  await inbox.until(1);
  await unsubscribe();
}

/** Options of {@link busContract}. */
export interface BusContractOptions {
  /** Skip the whole suite with this message (e.g. the server is not installed). */
  skip?: string | false;
}

/** Defines the contract tests for the buses `open` gives. */
export function busContract(name: string, open: () => Promise<OpenedBus>, options: BusContractOptions = {}): void {
  describe(`Bus contract: ${name}`, { skip: options.skip }, () => {
    let medium: OpenedBus;
    let a: Bus;
    let b: Bus;
    before(async () => {
      medium = await open();
      a = await medium.node();
      b = await medium.node();
    });
    after(() => medium?.close());
    const channel = () => channels.device(randomUUID());

    test('a working bus answers ping', async () => {
      await a.ping();
      await b.ping();
    });

    test('every kind of message arrives as published, from this node and from another', async () => {
      const ch = channel();
      const inbox = new Inbox();
      await a.subscribe(ch, inbox.handler);
      const sent: BusMessage[] = [
        { kind: 'attributes', deviceId: 'dev-1', update: { fw: '1.2', on: true, n: 3.5, nested: { list: [1, 'x', null] } } },
        { kind: 'rpc', deviceId: 'dev-1', rpcId: 'r-1' },
        { kind: 'rpc-reply', rpcId: 'r-1', status: 'SUCCESSFUL', response: '{"ok":1}' },
        { kind: 'credentials-changed', credentialsId: 'tok', deviceId: 'dev-1' },
      ];
      await a.publish(ch, sent[0]);
      await a.publish(ch, sent[1]);
      await b.publish(ch, sent[2]);
      await b.publish(ch, sent[3]);
      await inbox.until(4);
      assert.deepEqual(inbox.messages.slice().sort((x, y) => x.kind.localeCompare(y.kind)), sent.slice().sort((x, y) => x.kind.localeCompare(y.kind)));
    });

    test('a message published right after subscribe resolves is delivered (the subscription is live by then)', async () => {
      for (let i = 0; i < 20; i++) {
        const ch = channel();
        const inbox = new Inbox();
        const unsubscribe = await b.subscribe(ch, inbox.handler);
        await a.publish(ch, attrs(i));
        await inbox.until(1);
        assert.deepEqual(inbox.messages, [attrs(i)]);
        await unsubscribe();
      }
    });

    test('every subscriber of a channel on every node gets each message once', async () => {
      const ch = channel();
      const inboxes = [new Inbox(), new Inbox(), new Inbox()];
      await a.subscribe(ch, inboxes[0].handler);
      await a.subscribe(ch, inboxes[1].handler);
      await b.subscribe(ch, inboxes[2].handler);
      await a.publish(ch, attrs(1));
      await Promise.all(inboxes.map((i) => i.until(1)));
      await fence(a, a);
      await fence(a, b);
      for (const inbox of inboxes) assert.deepEqual(inbox.messages, [attrs(1)]);
    });

    test('messages from one publisher arrive in the order published', async () => {
      const ch = channel();
      const inbox = new Inbox();
      await b.subscribe(ch, inbox.handler);
      for (let i = 0; i < 100; i++) await a.publish(ch, attrs(i));
      await inbox.until(100);
      assert.deepEqual(inbox.messages, Array.from({ length: 100 }, (_, i) => attrs(i)));
    });

    test('a subscriber gets nothing published on other channels', async () => {
      const inbox = new Inbox();
      await b.subscribe(channel(), inbox.handler);
      await a.publish(channel(), attrs(1));
      await a.publish(channels.rpcReply(randomUUID()), attrs(2));
      await fence(a, b);
      assert.deepEqual(inbox.messages, []);
    });

    test('publishing where nobody listens succeeds', async () => {
      await a.publish(channel(), attrs(1));
    });

    test('after unsubscribing a handler gets nothing more; the channel\'s other handlers still do', async () => {
      const ch = channel();
      const gone = new Inbox();
      const stays = new Inbox();
      const unsubscribe = await b.subscribe(ch, gone.handler);
      await b.subscribe(ch, stays.handler);
      await a.publish(ch, attrs(1));
      await Promise.all([gone.until(1), stays.until(1)]);
      await unsubscribe();
      await unsubscribe(); // a second call is harmless
      await a.publish(ch, attrs(2));
      await stays.until(2);
      await fence(a, b);
      assert.deepEqual(gone.messages, [attrs(1)]);
      assert.deepEqual(stays.messages, [attrs(1), attrs(2)]);
    });

    test('the last unsubscribe stops delivery to that node entirely', async () => {
      const ch = channel();
      const inbox = new Inbox();
      const unsubscribe = await b.subscribe(ch, inbox.handler);
      await unsubscribe();
      await a.publish(ch, attrs(1));
      await fence(a, b);
      assert.deepEqual(inbox.messages, []);
    });

    test('the same function subscribed twice is two subscriptions', async () => {
      const ch = channel();
      const inbox = new Inbox();
      const first = await b.subscribe(ch, inbox.handler);
      await b.subscribe(ch, inbox.handler);
      await first();
      await a.publish(ch, attrs(1));
      await fence(a, b);
      assert.equal(inbox.messages.length, 1);
    });

    test('interleaved subscribe and unsubscribe calls end in the state of the last call', async () => {
      const ch = channel();
      const inbox = new Inbox();
      const ops: Promise<unknown>[] = [];
      for (let i = 0; i < 10; i++) {
        const sub = b.subscribe(ch, () => {});
        ops.push(sub.then((unsubscribe) => unsubscribe()));
      }
      const last = b.subscribe(ch, inbox.handler);
      await Promise.all(ops);
      await last;
      await a.publish(ch, attrs(7));
      await inbox.until(1);
      assert.deepEqual(inbox.messages, [attrs(7)]);
    });
  });
}
