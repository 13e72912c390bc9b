import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCommitter } from '../../src/core/group-commit.ts';
import type { AttributeWrite, TsPoint } from '../../src/core/model.ts';
import type { Store, WriteBatch } from '../../src/core/ports/store.ts';
import { silentLogger } from '../support/core.ts';

const pt = (key: string, ts = 1): TsPoint => ({ deviceId: 'd', ts, key, value: { type: 'LONG', value: ts } });
const attr = (key: string): AttributeWrite => ({ deviceId: 'd', scope: 'CLIENT_SCOPE', entries: [{ key, value: { type: 'LONG', value: 1 } }], ts: 1 });

/** A store that records each writeBatch (as key lists) and fails any batch holding a point or attribute named `bad`. */
function fakeStore(log: string[] = []) {
  const batches: { telemetry: string[]; attributes: string[] }[] = [];
  const store = {
    async writeBatch(batch: WriteBatch) {
      const telemetry = Array.from({ length: batch.telemetry.length }, (_, i) => batch.telemetry[i]?.key ?? '<hole>');
      const attributes = batch.attributes.flatMap((a) => a.entries.map((e) => e.key));
      batches.push({ telemetry, attributes });
      if (telemetry.includes('bad') || attributes.includes('bad')) throw new Error('bad row');
      log.push(`commit ${telemetry.length + attributes.length}`);
    },
  } as unknown as Store;
  return { store, batches };
}

test('submissions are merged in order into batches of at most maxRows rows (a larger one alone), each written whole', async () => {
  const { store, batches } = fakeStore();
  const committer = new GroupCommitter(store, { maxRows: 5, maxDelayMs: 0 }, silentLogger);
  const sizes = [2, 2, 2, 7, 1];
  let n = 0;
  await Promise.all(sizes.map((size) => committer.submit(Array.from({ length: size }, () => pt(`k${n++}`)))));
  const keys = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `k${from + i}`);
  // The second batch is smaller than the first: it must carry exactly its own points.
  assert.deepEqual(batches, [
    { telemetry: keys(0, 4), attributes: [] },
    { telemetry: keys(4, 6), attributes: [] },
    { telemetry: keys(6, 13), attributes: [] },
    { telemetry: keys(13, 14), attributes: [] },
  ]);
  assert.deepEqual(committer.stats.batches, 4);
  assert.deepEqual(committer.stats.rows, 14);
});

test('the committed hook runs after the commit and before the promise resolves, with the submission point count', async () => {
  const log: string[] = [];
  const { store } = fakeStore(log);
  const committer = new GroupCommitter(store, { maxRows: 100, maxDelayMs: 0 }, silentLogger);
  const hook = (points: number) => void log.push(`hook ${points}`);
  await Promise.allSettled([
    committer.submit([pt('a'), pt('b')], undefined, hook).then(() => log.push('resolved 2')),
    committer.submit([pt('c')], [attr('x')], hook).then(() => log.push('resolved 1')),
  ]);
  assert.deepEqual(log, ['commit 4', 'hook 2', 'hook 1', 'resolved 2', 'resolved 1']);

  log.length = 0;
  await assert.rejects(committer.submit([pt('bad')], undefined, hook), /bad row/);
  assert.deepEqual(log, [], 'no hook for a failed submission');
  await committer.submit([], undefined, hook);
  assert.deepEqual(log, ['hook 0'], 'nothing to write still counts as committed');
  const failing = () => {
    throw new Error('hook failed');
  };
  await assert.rejects(committer.submit([pt('a')], undefined, failing), /hook failed/);
});

test('when a batch fails, each submission is retried with exactly its own writes and only the bad one fails', async () => {
  const { store, batches } = fakeStore();
  const committer = new GroupCommitter(store, { maxRows: 100, maxDelayMs: 0 }, silentLogger);
  const results = await Promise.allSettled([
    committer.submit([pt('a1'), pt('a2')]),
    committer.submit([], [attr('b')]),
    committer.submit([pt('c1'), pt('bad')]),
    committer.submit([pt('d1')], [attr('d2'), attr('d3')]),
  ]);
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
  assert.deepEqual(batches, [
    { telemetry: ['a1', 'a2', 'c1', 'bad', 'd1'], attributes: ['b', 'd2', 'd3'] },
    { telemetry: ['a1', 'a2'], attributes: [] },
    { telemetry: [], attributes: ['b'] },
    { telemetry: ['c1', 'bad'], attributes: [] },
    { telemetry: ['d1'], attributes: ['d2', 'd3'] },
  ]);
  assert.equal(committer.stats.batches, 0, 'retried submissions are not counted as batches');
});

test('close commits everything queued, then refuses new writes', async () => {
  const { store, batches } = fakeStore();
  const committer = new GroupCommitter(store, { maxRows: 2, maxDelayMs: 50 }, silentLogger);
  const pending = [committer.submit([pt('a')]), committer.submit([pt('b')]), committer.submit([pt('c')])];
  await committer.close();
  assert.deepEqual(batches.map((b) => b.telemetry), [['a', 'b'], ['c']]);
  await Promise.all(pending);
  await assert.rejects(committer.submit([pt('d')]), /storage is closing/);
});

/** A store that records when each commit started (performance.now()). */
function timedStore() {
  const starts: number[] = [];
  const store = { async writeBatch() { starts.push(performance.now()); } } as unknown as Store;
  return { store, starts };
}

test('minIntervalMs: writes arriving soon after a commit started wait for the rest of the interval', async () => {
  const { store, starts } = timedStore();
  const committer = new GroupCommitter(store, { maxRows: 100, maxDelayMs: 0, minIntervalMs: 60 }, silentLogger);
  await committer.submit([pt('a')]);
  await Promise.all([committer.submit([pt('b')]), committer.submit([pt('c')])]); // one batch, held back
  assert.equal(starts.length, 2);
  assert.ok(starts[1] - starts[0] >= 55, `second commit ${(starts[1] - starts[0]).toFixed(1)} ms after the first`);
  assert.equal(committer.stats.rows, 3);
});

test('minIntervalMs: a write after a quiet moment, and a batch that is already full, are committed at once', async () => {
  const { store, starts } = timedStore();
  const committer = new GroupCommitter(store, { maxRows: 2, maxDelayMs: 0, minIntervalMs: 200 }, silentLogger);
  await committer.submit([pt('a')]);
  await new Promise((r) => setTimeout(r, 250));
  const quiet = performance.now();
  await committer.submit([pt('b')]);
  assert.ok(starts[1] - quiet < 100, 'no wait after a quiet moment');
  // Five rows with maxRows 2: three batches queued at once; the full ones do not wait for the interval.
  const burst = performance.now();
  await Promise.all([1, 2, 3, 4, 5].map((i) => committer.submit([pt(`k${i}`)])));
  assert.equal(starts.length, 5);
  assert.ok(starts[3] - burst < 100, 'the second batch of the burst went at once');
});

test('submitTo tells its listener what submit resolves or rejects: after the commit and hook, mixed with promise submissions, retried alone when its batch fails', async () => {
  const log: string[] = [];
  const { store, batches } = fakeStore(log);
  const committer = new GroupCommitter(store, { maxRows: 100, maxDelayMs: 0 }, silentLogger);
  const hook = (points: number) => void log.push(`hook ${points}`);
  const listener = (name: string) => {
    let settle!: () => void;
    const done = new Promise<void>((resolve) => (settle = resolve));
    return { done, committed: () => (log.push(`${name} committed`), settle()), failed: (err: unknown) => (log.push(`${name} failed: ${(err as Error).message}`), settle()) };
  };
  const a = listener('a');
  committer.submitTo([pt('a1'), pt('a2')], a, hook);
  assert.equal(log.length, 0, 'nothing is told during the call');
  const b = committer.submit([pt('b')], undefined, hook).then(() => void log.push('b resolved'));
  await Promise.all([a.done, b]);
  assert.deepEqual(log, ['commit 3', 'hook 2', 'a committed', 'hook 1', 'b resolved'], 'a listener is told at once, a promise on its reaction');
  assert.equal(batches.length, 1, 'one transaction for both');

  log.length = 0;
  const bad = listener('bad');
  const good = listener('good');
  committer.submitTo([pt('bad')], bad, hook);
  committer.submitTo([pt('g')], good, hook);
  await Promise.all([bad.done, good.done]);
  assert.deepEqual(log, ['bad failed: bad row', 'commit 1', 'hook 1', 'good committed'], 'the failed batch is retried submission by submission');

  log.length = 0;
  const empty = listener('empty');
  committer.submitTo([], empty, hook);
  assert.equal(log.length, 0);
  await empty.done;
  assert.deepEqual(log, ['hook 0', 'empty committed'], 'nothing to write still counts as committed, on a later microtask');

  log.length = 0;
  const throwing = listener('throwing');
  committer.submitTo([pt('t')], throwing, () => {
    throw new Error('hook failed');
  });
  await throwing.done;
  assert.deepEqual(log, ['commit 1', 'throwing failed: hook failed']);

  await committer.close();
  log.length = 0;
  const late = listener('late');
  committer.submitTo([pt('z')], late);
  await late.done;
  assert.deepEqual(log, ['late failed: storage is closing']);
});

test('a listener that throws is told once and changes nothing for the other submissions of its batch', async () => {
  const log: string[] = [];
  const { store, batches } = fakeStore(log);
  const logged: string[] = [];
  const logger = { ...silentLogger, error: (_obj: object, msg?: string) => void logged.push(msg ?? '') };
  const committer = new GroupCommitter(store, { maxRows: 100, maxDelayMs: 0 }, logger);
  const told = new Map<string, string[]>();
  const listener = (name: string, throws = false) => {
    told.set(name, []);
    let settle!: () => void;
    const done = new Promise<void>((resolve) => (settle = resolve));
    return {
      done,
      committed: () => {
        told.get(name)!.push('committed');
        settle();
        if (throws) throw new Error(`${name} listener bug`);
      },
      failed: (err: unknown) => {
        told.get(name)!.push(`failed: ${(err as Error).message}`);
        settle();
      },
    };
  };
  const first = listener('first');
  const thrower = listener('thrower', true);
  const last = listener('last');
  committer.submitTo([pt('a')], first);
  committer.submitTo([pt('b')], thrower);
  committer.submitTo([pt('c')], last);
  await Promise.all([first.done, thrower.done, last.done]);
  await new Promise((resolve) => setTimeout(resolve, 50)); // room for a second telling, were there one
  assert.deepEqual(Object.fromEntries(told), { first: ['committed'], thrower: ['committed'], last: ['committed'] }, 'each told exactly once');
  assert.equal(batches.length, 1, 'the committed batch is not written again');
  assert.deepEqual(logged, ['commit listener failed'], 'the listener error is logged');

  const empty = listener('empty', true);
  committer.submitTo([], empty);
  await empty.done;
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(told.get('empty'), ['committed']);
  assert.equal(logged.length, 2, 'a throw on the microtask path is logged too, not an uncaught exception');
  await committer.close();
});
