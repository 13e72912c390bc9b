/**
 * A pg pool for Kysely that runs each parameterised query shape as a named prepared statement, so PostgreSQL parses
 * and plans it once per connection instead of on every execution (roughly doubles small-statement throughput).
 */
import type { PostgresPool, PostgresPoolClient } from 'kysely';
import type pg from 'pg';
import { postgresUnavailable } from './unavailable.ts';

/** Rethrows `err`, as "the database is unavailable" when it means a lost or refused connection (unavailable.ts). */
function rethrow(err: unknown): never {
  throw postgresUnavailable(err) ?? err;
}

/** Most distinct statements to prepare; every connection holds at most this many. Further shapes run unprepared. */
const MAX_STATEMENTS = 500;
/** Longer texts (bulk statements, long IN lists) vary too much to be worth keeping. */
const MAX_TEXT = 4000;

/**
 * Wraps `pool` so Kysely's parameterised queries use named prepared statements. Statements are prepared per
 * connection (pg remembers which it parsed on each), so a connection opened after an outage prepares them again.
 * Errors that mean the database is down reach callers as DependencyUnavailableError.
 */
export function preparedStatementPool(pool: pg.Pool): PostgresPool {
  const names = new Map<string, string>();
  const nameOf = (text: string): string | undefined => {
    let name = names.get(text);
    if (name === undefined && names.size < MAX_STATEMENTS && text.length <= MAX_TEXT) names.set(text, (name = `fg_${names.size + 1}`));
    return name;
  };
  return {
    async connect(): Promise<PostgresPoolClient> {
      const client = await pool.connect().catch(rethrow);
      return {
        query(textOrCursor: any, parameters?: ReadonlyArray<unknown>): any {
          if (typeof textOrCursor !== 'string') return client.query(textOrCursor);
          const name = parameters && parameters.length > 0 ? nameOf(textOrCursor) : undefined;
          if (name === undefined) return client.query(textOrCursor, parameters as unknown[]).catch(rethrow);
          return client.query({ name, text: textOrCursor, values: parameters as unknown[] }).catch(rethrow);
        },
        release: (destroy?: boolean) => client.release(destroy),
      };
    },
    end: () => pool.end(),
  };
}
