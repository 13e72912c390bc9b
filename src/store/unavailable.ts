/**
 * Which driver errors mean "the database is down or cannot write now" (issue 18): they become a
 * DependencyUnavailableError, which devices see as "not now" (HTTP 503, CoAP 5.03, MQTT 5 PUBACK 0x83) and /healthz
 * as `database: DOWN`. Every other error (a constraint, a bug) passes through unchanged.
 */
import { DependencyUnavailableError } from '../core/errors.ts';

/** Node socket errors: the server is not reachable or the connection broke. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED']);

/** pg's own messages for a connection that ended or never came (it gives them no code). */
const PG_CONNECTION_MESSAGES = /Connection terminated|not queryable|timeout exceeded when trying to connect|Connection ended|connection error/i;

const POSTGRES_ADVICE = 'check that PostgreSQL is running and reachable; fleetgate reconnects on its own';

/**
 * The PostgreSQL failure `err` stands for, or undefined when it is not an outage. SQLSTATE classes: 08 connection
 * exception, 57P01-03 shutdown / cannot connect now, 53 insufficient resources (disk full, too many connections),
 * 58 system (I/O) error.
 */
export function postgresUnavailable(err: unknown): DependencyUnavailableError | undefined {
  if (err instanceof DependencyUnavailableError) return err;
  const e = (err ?? {}) as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (SOCKET_CODES.has(code)) return new DependencyUnavailableError('database', `PostgreSQL cannot be reached (${code})`, POSTGRES_ADVICE, err);
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') {
    return new DependencyUnavailableError('database', `PostgreSQL connection lost: ${message} (${code})`, POSTGRES_ADVICE, err);
  }
  if (code === '53100') return new DependencyUnavailableError('database', `PostgreSQL's disk is full (${code})`, "free space on PostgreSQL's disk", err);
  if (code.startsWith('53') || code.startsWith('58')) return new DependencyUnavailableError('database', `PostgreSQL cannot serve: ${message} (${code})`, 'see the PostgreSQL server log', err);
  if (code === '' && PG_CONNECTION_MESSAGES.test(message)) return new DependencyUnavailableError('database', `PostgreSQL connection lost: ${message}`, POSTGRES_ADVICE, err);
  return undefined;
}

/**
 * The SQLite failure `err` stands for, or undefined. better-sqlite3 gives SQLite's extended result code as `code`:
 * SQLITE_FULL (disk or max_page_count full), SQLITE_IOERR_* (the file system failed), SQLITE_BUSY (another process
 * held the write lock past busy_timeout), SQLITE_READONLY_*, SQLITE_CANTOPEN, SQLITE_NOMEM.
 */
export function sqliteUnavailable(err: unknown, path: string): DependencyUnavailableError | undefined {
  if (err instanceof DependencyUnavailableError) return err;
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  if (code === 'SQLITE_FULL') {
    return new DependencyUnavailableError('database', `the disk holding ${path} is full (SQLITE_FULL)`, 'free space on that file system or grow it; writes resume on their own', err);
  }
  if (code.startsWith('SQLITE_IOERR')) {
    return new DependencyUnavailableError('database', `the file system failed while writing ${path} (${code})`, 'check the disk and the kernel log (dmesg); writes resume when the file system works again', err);
  }
  if (code.startsWith('SQLITE_BUSY')) return new DependencyUnavailableError('database', `${path} is locked by another process (${code})`, 'stop the other process writing this file', err);
  if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN') || code === 'SQLITE_NOMEM') {
    return new DependencyUnavailableError('database', `${path} cannot be written (${code})`, 'check the permissions and free memory of the host', err);
  }
  return undefined;
}

/** True for an error an ioredis or pg connection emits when its server goes away (safe to keep serving after it). */
export function isConnectionError(err: unknown): boolean {
  if (postgresUnavailable(err)) return true;
  const e = (err ?? {}) as { name?: unknown; message?: unknown };
  return e.name === 'MaxRetriesPerRequestError' || /Connection is closed|Stream isn't writeable|Reached the max retries/i.test(String(e.message ?? ''));
}
