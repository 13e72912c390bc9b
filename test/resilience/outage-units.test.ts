/**
 * Issue 18, the parts in isolation: which driver errors mean "down", the outage tracker (logged once, backoff,
 * recovery), and the group commit's answer to a database that is down (everyone "not now" at once; a broken
 * connection retried).
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { DependencyUnavailableError, ERRORS, isDependencyUnavailable } from '../../src/core/errors.ts';
import { GroupCommitter } from '../../src/core/group-commit.ts';
import { Outages, backoffMs } from '../../src/core/outages.ts';
import type { TsPoint } from '../../src/core/model.ts';
import type { Store } from '../../src/core/ports/store.ts';
import { isConnectionError, postgresUnavailable, sqliteUnavailable } from '../../src/store/unavailable.ts';
import { redisUnavailable } from '../../src/bus/redis-unavailable.ts';
import { ackReason, connackCode } from '../../src/transports/mqtt/reason-codes.ts';

const pt = (ts: number): TsPoint => ({ deviceId: 'd', ts, key: 'k', value: { type: 'LONG', value: ts } });

/** A logger that keeps its lines. */
function recordingLogger() {
  const lines: { level: string; obj: object; msg?: string }[] = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj, msg });
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') } };
}

const down = () => new DependencyUnavailableError('database', 'PostgreSQL cannot be reached (ECONNREFUSED)', 'start it');

describe('what counts as an outage', () => {
  it('PostgreSQL: refused or broken connections, shutdown, a full disk; not a unique violation or a syntax error', () => {
    assert.match(postgresUnavailable(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))!.reason, /ECONNREFUSED/);
    assert.match(postgresUnavailable(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))!.reason, /57P01/);
    assert.match(postgresUnavailable(Object.assign(new Error('the database system is starting up'), { code: '57P03' }))!.reason, /57P03/);
    assert.match(postgresUnavailable(Object.assign(new Error('could not extend file'), { code: '53100' }))!.reason, /disk is full/);
    assert.ok(postgresUnavailable(new Error('Connection terminated unexpectedly')));
    assert.ok(postgresUnavailable(new Error('Client has encountered a connection error and is not queryable')));
    assert.equal(postgresUnavailable(Object.assign(new Error('duplicate key'), { code: '23505' })), undefined);
    assert.equal(postgresUnavailable(Object.assign(new Error('syntax error'), { code: '42601' })), undefined);
    assert.equal(postgresUnavailable(new Error('something else')), undefined);
  });

  it('SQLite: a full disk, I/O errors, a lock held too long; not a constraint', () => {
    const full = sqliteUnavailable(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }), '/data/x.db')!;
    assert.equal(full.reason, 'the disk holding /data/x.db is full (SQLITE_FULL)');
    assert.match(full.advice, /free space/);
    assert.match(sqliteUnavailable(Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_WRITE' }), 'x.db')!.reason, /SQLITE_IOERR_WRITE/);
    assert.ok(sqliteUnavailable(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }), 'x.db'));
    assert.equal(sqliteUnavailable(Object.assign(new Error('UNIQUE constraint failed'), { code: 'SQLITE_CONSTRAINT_UNIQUE' }), 'x.db'), undefined);
  });

  it('Redis: refused connections and commands given up on; connection errors are safe to keep serving after', () => {
    assert.match(redisUnavailable(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))!.reason, /Redis cannot be reached/);
    assert.ok(redisUnavailable(Object.assign(new Error('Reached the max retries per request limit'), { name: 'MaxRetriesPerRequestError' })));
    assert.equal(redisUnavailable(new Error('ERR wrong number of arguments')), undefined);
    assert.ok(isConnectionError(Object.assign(new Error('terminating connection'), { code: '57P01' })));
    assert.equal(isConnectionError(new TypeError('x is undefined')), false);
  });

  it('reaches devices as "not now": HTTP 503 + Retry-After, CoAP 5.03, MQTT 5 PUBACK 0x83, CONNACK 3 / 0x88', () => {
    const err = down();
    assert.ok(isDependencyUnavailable(err));
    assert.equal(err.signal.http, 503);
    assert.equal(err.signal.coap, '5.03');
    assert.ok(err.retryAfterSeconds! > 0);
    assert.equal(ackReason(err), 0x83, 'a valid PUBACK reason (MQTT 5.0 §3.4.2.1)');
    assert.equal(connackCode(err, 5), ERRORS.SERVER_UNAVAILABLE.mqtt5);
    assert.equal(connackCode(err, 4), 3);
    assert.doesNotMatch(err.message, /ECONNREFUSED/, 'devices get the generic message');
  });
});

describe('the outage tracker', () => {
  it('logs an outage once when it begins and once when it ends, counting the failures in between', () => {
    const { lines, logger } = recordingLogger();
    const seen: string[] = [];
    const outages = new Outages(logger, { dependencyFailed: (part) => void seen.push(`fail ${part}`), dependencyState: (part, up) => void seen.push(`${part} ${up ? 'up' : 'down'}`) });
    for (let i = 0; i < 988; i++) outages.failed(down());
    assert.equal(lines.length, 1);
    assert.equal(lines[0].level, 'error');
    assert.match(lines[0].msg!, /database unavailable: PostgreSQL cannot be reached \(ECONNREFUSED\)\. What to do: start it/);
    assert.equal(outages.of('database')!.failures, 988);
    outages.recovered('database');
    outages.recovered('database');
    assert.equal(lines.length, 2);
    assert.match(lines[1].msg!, /database available again after .* s \(988 operations refused meanwhile\)/);
    assert.equal(outages.of('database'), undefined);
    assert.deepEqual([seen[0], seen[1], seen.at(-1)], ['fail database', 'database down', 'database up']);
  });

  it('refuses at once during the backoff, which grows with the failures, with jitter, to at most 1 s', () => {
    const outages = new Outages(recordingLogger().logger);
    assert.equal(outages.refusal('database'), undefined, 'no outage: try');
    const err = down();
    outages.failed(err);
    assert.equal(outages.refusal('database'), err);
    for (let n = 1; n <= 20; n++) {
      const ms = backoffMs(n);
      const full = Math.min(1000, 50 * 2 ** Math.min(n - 1, 5));
      assert.ok(ms >= full / 2 && ms <= full, `attempt ${n}: ${ms} ms`);
    }
  });
});

describe('group commit while the database is down', () => {
  it('fails every waiting submission at once with "not now", without writing them one by one', async () => {
    let writes = 0;
    const failing = { writeBatch: async () => (writes++, Promise.reject(down())) } as unknown as Store;
    const outages = new Outages(recordingLogger().logger);
    outages.failed(down()); // already known to be down: no retry
    outages.of('database')!.retryAt = 0; // its backoff has passed
    const committer = new GroupCommitter(failing, { maxRows: 1000, maxDelayMs: 0 }, recordingLogger().logger, outages);
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => committer.submit([pt(i)])));
    assert.ok(results.every((r) => r.status === 'rejected' && isDependencyUnavailable(r.reason)));
    assert.equal(writes, 1, 'one attempt for the whole batch');
  });

  it('retries a batch whose connection broke, and acknowledges it when the retry commits', async () => {
    let writes = 0;
    const flaky = {
      async writeBatch() {
        if (++writes === 1) throw new DependencyUnavailableError('database', 'PostgreSQL connection lost (57P01)', 'x');
      },
    } as unknown as Store;
    const outages = new Outages(recordingLogger().logger);
    const committer = new GroupCommitter(flaky, { maxRows: 1000, maxDelayMs: 0 }, recordingLogger().logger, outages);
    await committer.submit([pt(1)]);
    assert.equal(writes, 2);
    assert.equal(outages.of('database'), undefined, 'not an outage');
  });

  it('refuses without writing while the backoff runs, and commits again once the database is back', async () => {
    let up = false;
    let writes = 0;
    const store = {
      async writeBatch() {
        writes++;
        if (!up) throw down();
      },
    } as unknown as Store;
    const outages = new Outages(recordingLogger().logger);
    const committer = new GroupCommitter(store, { maxRows: 1000, maxDelayMs: 0 }, recordingLogger().logger, outages);
    await assert.rejects(committer.submit([pt(1)]), isDependencyUnavailable);
    assert.equal(writes, 4, 'the first failure and its three retries');
    outages.of('database')!.retryAt = Date.now() + 60_000;
    await assert.rejects(committer.submit([pt(2)]), isDependencyUnavailable);
    assert.equal(writes, 4, 'refused during the backoff without touching the store');
    up = true;
    outages.of('database')!.retryAt = 0;
    await committer.submit([pt(3)]);
    assert.equal(outages.of('database'), undefined, 'a commit ends the outage');
  });
});
