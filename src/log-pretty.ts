/**
 * A readable rendering of pino's JSON lines for a terminal: `12:03:04.123 INFO  message  key=value ...`, the level
 * coloured, an error's stack on the lines below. Used when stdout is a TTY (config logFormat `auto`) or on request.
 * The JSON is rendered after pino's redaction, so secrets stay `[redacted]` here too.
 */
import { Writable } from 'node:stream';

const LEVELS: Record<number, { name: string; color: number }> = {
  10: { name: 'TRACE', color: 90 },
  20: { name: 'DEBUG', color: 36 },
  30: { name: 'INFO', color: 32 },
  40: { name: 'WARN', color: 33 },
  50: { name: 'ERROR', color: 31 },
  60: { name: 'FATAL', color: 35 },
};

/** Fields that are part of the line's frame, not shown as key=value. */
const FRAME = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'err']);

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  return JSON.stringify(v) ?? String(v);
}

/** Renders one pino JSON line; a line that is not JSON is returned unchanged. */
export function formatLogLine(line: string, color: boolean): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const level = LEVELS[entry.level as number] ?? { name: String(entry.level), color: 0 };
  const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString().slice(11, 23) : '';
  const tag = level.name.padEnd(5);
  const parts = [time, color ? `\x1b[${level.color}m${tag}\x1b[0m` : tag, String(entry.msg ?? '')];
  const fields = Object.entries(entry)
    .filter(([k]) => !FRAME.has(k))
    .map(([k, v]) => `${k}=${value(v)}`);
  let out = parts.join(' ') + (fields.length > 0 ? `  ${fields.join(' ')}` : '');
  const err = entry.err as { message?: string; stack?: string } | undefined;
  if (err) out += `\n    ${(err.stack ?? err.message ?? value(err)).replace(/\n/g, '\n    ')}`;
  return out;
}

/** A stream for pino that writes formatted lines to `target`. */
export function prettyStream(target: NodeJS.WritableStream, color: boolean): Writable {
  let pending = '';
  return new Writable({
    write(chunk, _encoding, callback) {
      pending += String(chunk);
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line !== '') target.write(formatLogLine(line, color) + '\n');
      }
      callback();
    },
  });
}
