/**
 * The process logger: pino JSON lines, with every field that can hold a secret redacted.
 */
import { pino, type Logger } from 'pino';

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
];

/** A pino logger writing to `destination` (stdout by default). */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { name: 'fleetgate' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    destination ?? process.stdout,
  );
}

/** Strips the token segment of device API URLs (`/api/v1/{token}/...`) before they are logged. */
export function redactUrl(url: string): string {
  return url.replace(/^(\/api\/v1\/)(?!provision(?:[/?]|$))[^/?]+/, '$1[token]');
}

export type { Logger };
