/**
 * The process logger: pino JSON lines, with every field that can hold a secret redacted.
 */
import { pino, type Logger } from 'pino';
import { prettyStream } from './log-pretty.ts';

/** Field paths that may hold a secret anywhere in a log object. */
export const REDACTED_PATHS = [
  'password',
  '*.password',
  'token',
  '*.token',
  'accessToken',
  '*.accessToken',
  'provisionDeviceSecret',
  '*.provisionDeviceSecret',
  'credentialsValue',
  '*.credentialsValue',
  'secret',
  '*.secret',
  'refreshToken',
  '*.refreshToken',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'req.headers["x-authorization"]',
  'jwtSecret',
  '*.jwtSecret',
  'metricsToken',
  '*.metricsToken',
  'adminPassword',
  '*.adminPassword',
  'newPassword',
  '*.newPassword',
];

/**
 * A pino logger writing to `destination` (stdout by default). `format` `pretty` renders readable lines
 * (src/log-pretty.ts); `auto` does so only when writing to stdout and stdout is a terminal.
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream, format: 'auto' | 'json' | 'pretty' = 'json'): Logger {
  const target = destination ?? process.stdout;
  const pretty = format === 'pretty' || (format === 'auto' && target === process.stdout && process.stdout.isTTY === true);
  return pino(
    {
      level,
      base: { name: 'fleetgate' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    pretty ? prettyStream(target, target === process.stdout && process.stdout.isTTY === true) : target,
  );
}

/**
 * Strips the token segment of device API URLs (`/api/v1/{token}/...`) before they are logged. Also in the forms a
 * misconfigured client sends and the router answers 404 (logged all the same): repeated slashes (`//api/v1/..`, a base
 * URL ending in `/`), another case (`/API/v1/..`) and the absolute form (`http://host/api/v1/..`).
 */
export function redactUrl(url: string): string {
  return url.replace(/^((?:[a-z][a-z0-9+.-]*:\/\/[^/?#]*)?\/+api\/+v1\/+)(?!provision(?:[/?]|$))[^/?]+/i, '$1[token]');
}

export type { Logger };
