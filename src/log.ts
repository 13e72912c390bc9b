/**
 * The process logger: pino JSON lines, with every field that can hold a secret redacted.
 */
import { pino, type Logger } from 'pino';
import { prettyStream } from './log-pretty.ts';

/** The names of fields that hold secrets: a field of any of these names is logged as `[redacted]`, down to MAX_DEPTH levels. */
const SECRET_KEYS = new Set(['password', 'token', 'accessToken', 'provisionDeviceSecret', 'credentialsValue', 'secret', 'refreshToken', 'authorization', 'x-authorization', 'jwtSecret', 'metricsToken', 'adminPassword', 'newPassword']);
const CENSOR = '[redacted]';
/** How deep `redactSecrets` looks: log objects are shallow; the old path list went 3 levels (req.headers.authorization). */
const MAX_DEPTH = 6;

function isWalkable(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null || Array.isArray(v) || v instanceof Error;
}

/**
 * A copy of `v` that keeps its prototype (an Error stays an Error for pino's err serializer). Its fields are
 * configurable and writable even where `v`'s are not (a frozen object, a getter), so redacting them cannot throw.
 */
function shallowCopy<T extends object>(v: T): T {
  if (Array.isArray(v)) return [...v] as T;
  const fields = Object.getOwnPropertyDescriptors(v);
  for (const key of Reflect.ownKeys(fields)) {
    const d = fields[key as keyof typeof fields] as PropertyDescriptor;
    d.configurable = true;
    if ('value' in d) d.writable = true;
  }
  return Object.create(Object.getPrototypeOf(v), fields) as T;
}

/**
 * `obj` with every field named like a secret replaced by `[redacted]`, in plain objects, arrays and errors down to
 * MAX_DEPTH levels. Returns `obj` itself (no copy) when it holds no such field — the usual case, one Set lookup per key;
 * otherwise copies only the objects on the way to a secret. Replaces pino's `redact` (fast-redact), whose wildcard paths
 * cost several microseconds on every line (issue 17).
 */
export function redactSecrets<T>(obj: T, depth = 0): T {
  if (!isWalkable(obj) || depth > MAX_DEPTH) return obj;
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(obj)) {
    const value = obj[key];
    let next: unknown;
    if (SECRET_KEYS.has(key)) next = value === undefined ? value : CENSOR;
    else if (isWalkable(value)) next = redactSecrets(value, depth + 1);
    else continue;
    if (next === value) continue;
    copy ??= shallowCopy(obj);
    Object.defineProperty(copy, key, { value: next, enumerable: true, writable: true, configurable: true });
  }
  return (copy ?? obj) as T;
}

type AsyncDestination = ReturnType<typeof pino.destination>;

/**
 * The lines of one event-loop turn handed to pino's asynchronous writer as one string. The writer measures the whole
 * text it holds back (`Buffer.byteLength` of up to 16 KB) on every write while a write(2) is under way, so under load
 * one line per write cost more than rendering the line (issue 17: ~2% of an HTTP provisioning). Flushed before the
 * writer's own flush on exit.
 */
class LineBatch {
  private lines: string[] = [];
  private scheduled = false;

  constructor(private readonly sink: AsyncDestination) {
    process.prependListener('beforeExit', () => this.drain());
    process.prependListener('exit', () => this.drainAtExit());
  }

  write(line: string): boolean {
    this.lines.push(line);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.drainSoon);
    }
    return true;
  }

  private readonly drainSoon = (): void => {
    this.scheduled = false;
    this.drain();
  };

  /**
   * Hands the gathered lines to the writer in pieces of at most BATCH_PIECE_CHARS (one line may be longer): the
   * writer writes what it is given as one asynchronous write(2), and a piece still being written when the process
   * ends is lost, so no write is made larger than the writer's own (16 KB) would be.
   */
  private drain(): void {
    const lines = this.lines;
    if (lines.length === 0) return;
    this.lines = [];
    if (lines.length === 1) {
      this.sink.write(lines[0]!);
      return;
    }
    let start = 0;
    let chars = 0;
    for (let i = 0; i < lines.length; i++) {
      if (chars > 0 && chars + lines[i]!.length > BATCH_PIECE_CHARS) {
        this.sink.write(lines.slice(start, i).join(''));
        start = i;
        chars = 0;
      }
      chars += lines[i]!.length;
    }
    this.sink.write(start === 0 ? lines.join('') : lines.slice(start).join(''));
  }

  /**
   * The process is ending (process.exit, an uncaught exception, the last turn): the event loop will not run again, so
   * an asynchronous write started now would never finish. The writer starts none from here on (`minLength` out of
   * reach) and writes what it holds with write(2) calls that wait (flushSync; pino's own exit hook does the same).
   */
  private drainAtExit(): void {
    (this.sink as unknown as { minLength: number }).minLength = Number.POSITIVE_INFINITY; // a field sonic-boom reads on each write
    try {
      this.drain();
      this.sink.flushSync();
    } catch {
      /* the writer has already been ended (pino ends it on beforeExit): nothing more can be written; never throw here */
    }
  }

  flush(cb?: (err?: Error) => void): void {
    this.drain();
    this.sink.flush(cb);
  }

  flushSync(): void {
    this.drain();
    this.sink.flushSync();
  }
}

/** Longest piece of gathered lines handed to the writer at once, UTF-16 units (at most 16 KB of UTF-8 for ASCII lines). */
const BATCH_PIECE_CHARS = 16 * 1024;

/**
 * Where JSON lines go by default: fd 1 through pino's asynchronous buffered writer (flushed on exit), not a write(2) per
 * line: one turn's lines are handed over as one string, and they gather until 4 KB or 100 ms have passed (under load a
 * write(2) per line, one per provisioning or MQTT session, cost more than the line itself).
 */
function defaultDestination(): NodeJS.WritableStream {
  return new LineBatch(pino.destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES, periodicFlush: LOG_FLUSH_MS })) as unknown as NodeJS.WritableStream;
}

/** Bytes of log lines gathered before a write (sonic-boom `minLength`). */
const LOG_BATCH_BYTES = 4096;
/** The longest a logged line waits for its write, ms (sonic-boom `periodicFlush`). */
const LOG_FLUSH_MS = 100;

/**
 * A pino logger writing to `destination` (stdout by default). `format` `pretty` renders readable lines
 * (src/log-pretty.ts); `auto` does so only when writing to stdout and stdout is a terminal. Secrets are redacted
 * from every logged object and from child loggers' bindings (`redactSecrets`).
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream, format: 'auto' | 'json' | 'pretty' = 'json'): Logger {
  const target = destination ?? process.stdout;
  const pretty = format === 'pretty' || (format === 'auto' && target === process.stdout && process.stdout.isTTY === true);
  const logger = pino(
    {
      level,
      base: { name: 'fleetgate' },
      formatters: { log: redactSecrets, bindings: redactSecrets },
    },
    pretty ? prettyStream(target, target === process.stdout && process.stdout.isTTY === true) : destination ?? (level === 'silent' ? target : defaultDestination()),
  );
  // pino applies `formatters.bindings` to the root's bindings only (a child gets a pass-through formatter), so a
  // child's bindings are redacted here. Children are created from their parent's prototype: every descendant
  // inherits this `child`, including children made with options of their own.
  const child = logger.child;
  logger.child = function (this: Logger, bindings: Record<string, unknown>, options?: object) {
    return child.call(this, redactSecrets(bindings), options);
  } as Logger['child'];
  return logger;
}

/**
 * Strips the token segment of device API URLs (`/api/v1/{token}/...`) before they are logged. Also in the forms a
 * misconfigured client sends and the router answers 404 (logged all the same): repeated slashes (`//api/v1/..`, a base
 * URL ending in `/`), another case (`/API/v1/..`) and the absolute form (`http://host/api/v1/..`). The values of query
 * parameters named like a secret (`accessToken`, `token`, `resetToken`, ...) become `[redacted]` (DESIGN 6).
 */
export function redactUrl(url: string): string {
  const redacted = url.replace(/^((?:[a-z][a-z0-9+.-]*:\/\/[^/?#]*)?\/+api\/+v1\/+)(?!provision(?:[?#]|$))[^/?]+/i, '$1[token]');
  return redacted.includes('?') ? redacted.replace(SECRET_QUERY_VALUE, '$1[redacted]') : redacted;
}

/** The value of a query parameter named like a secret (`?accessToken=` of POST /api/device, `?token=` of WebSocket URLs). */
const SECRET_QUERY_VALUE = /([?&][^=&#]*(?:token|secret|password)[^=&#]*=)[^&#]*/gi;

export type { Logger };
