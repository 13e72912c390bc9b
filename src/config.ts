/**
 * One typed configuration, merged from defaults < config file (JSON) < environment (FLEETGATE_*) < CLI flags.
 * Every option is declared once in OPTIONS with its env name, flag, type and documentation.
 */
import { readFileSync } from 'node:fs';

export interface Config {
  /** Bind address for every transport. */
  host: string;
  /** HTTP port (device API, admin API, OpenAPI UI, health). 0 picks a free port. */
  httpPort: number;
  mqttPort: number;
  coapPort: number;
  /** SQLite file path, `:memory:`, or a `postgres://` URL. */
  database: string;
  /** `memory` or a `redis://` URL. */
  bus: string;
  adminUsername: string;
  /** Password of the administrator created on first start; generated and printed once when empty. */
  adminPassword: string | undefined;
  /** Secret that signs admin JWTs; generated per database on first start when empty. */
  jwtSecret: string | undefined;
  /** Admin access token lifetime, seconds. */
  jwtExpirySeconds: number;
  /** Largest device API request body, bytes. */
  httpMaxPayload: number;
  /** Largest RPC reply body on the HTTP device API, bytes (ThingsBoard: 65536). */
  httpMaxRpcPayload: number;
  /** Default long-poll timeout of /attributes/updates and /rpc, ms (ThingsBoard: 60000). */
  httpLongPollTimeout: number;
  /** Default RPC timeout, ms (ThingsBoard: 10000). */
  rpcDefaultTimeout: number;
  /** A repeat provisioning request for a never-connected device gets the same credentials once the device is this old, ms. */
  provisionRetryAfterMs: number;
  /** Telemetry group commit: most rows in one transaction. */
  batchMaxRows: number;
  /** Telemetry group commit: longest wait before a batch is written, ms (0 = next turn of the event loop). */
  batchMaxDelayMs: number;
  /** SQLite `synchronous` pragma: `normal` survives a process kill, `full` also a power loss. */
  sqliteSynchronous: 'normal' | 'full';
  /** pino level: fatal, error, warn, info, debug, trace, silent. */
  logLevel: string;
}

type Kind = 'string' | 'port' | 'int' | 'optional-string' | 'enum';

interface OptionSpec {
  key: keyof Config;
  env: string;
  flag: string;
  kind: Kind;
  default: unknown;
  values?: readonly string[];
  doc: string;
}

/** All options, with their environment variable and CLI flag. */
export const OPTIONS: readonly OptionSpec[] = [
  { key: 'host', env: 'FLEETGATE_HOST', flag: 'host', kind: 'string', default: '0.0.0.0', doc: 'bind address' },
  { key: 'httpPort', env: 'FLEETGATE_HTTP_PORT', flag: 'http-port', kind: 'port', default: 8080, doc: 'HTTP port' },
  { key: 'mqttPort', env: 'FLEETGATE_MQTT_PORT', flag: 'mqtt-port', kind: 'port', default: 1883, doc: 'MQTT port' },
  { key: 'coapPort', env: 'FLEETGATE_COAP_PORT', flag: 'coap-port', kind: 'port', default: 5683, doc: 'CoAP port (UDP)' },
  { key: 'database', env: 'FLEETGATE_DATABASE', flag: 'database', kind: 'string', default: './data/fleetgate.db', doc: 'SQLite file path or postgres:// URL' },
  { key: 'bus', env: 'FLEETGATE_BUS', flag: 'bus', kind: 'string', default: 'memory', doc: 'message bus: memory or redis:// URL' },
  { key: 'adminUsername', env: 'FLEETGATE_ADMIN_USERNAME', flag: 'admin-username', kind: 'string', default: 'admin@fleetgate.local', doc: 'administrator login created on first start' },
  { key: 'adminPassword', env: 'FLEETGATE_ADMIN_PASSWORD', flag: 'admin-password', kind: 'optional-string', default: undefined, doc: 'administrator password on first start (generated and printed once if empty)' },
  { key: 'jwtSecret', env: 'FLEETGATE_JWT_SECRET', flag: 'jwt-secret', kind: 'optional-string', default: undefined, doc: 'secret signing admin tokens (generated and stored on first start if empty)' },
  { key: 'jwtExpirySeconds', env: 'FLEETGATE_JWT_EXPIRY_SECONDS', flag: 'jwt-expiry-seconds', kind: 'int', default: 9000, doc: 'admin token lifetime in seconds' },
  { key: 'httpMaxPayload', env: 'FLEETGATE_HTTP_MAX_PAYLOAD', flag: 'http-max-payload', kind: 'int', default: 1048576, doc: 'largest HTTP device API body in bytes' },
  { key: 'httpMaxRpcPayload', env: 'FLEETGATE_HTTP_MAX_RPC_PAYLOAD', flag: 'http-max-rpc-payload', kind: 'int', default: 65536, doc: 'largest HTTP RPC reply body in bytes' },
  { key: 'httpLongPollTimeout', env: 'FLEETGATE_HTTP_LONG_POLL_TIMEOUT', flag: 'http-long-poll-timeout', kind: 'int', default: 60000, doc: 'default long-poll timeout in ms' },
  { key: 'rpcDefaultTimeout', env: 'FLEETGATE_RPC_DEFAULT_TIMEOUT', flag: 'rpc-default-timeout', kind: 'int', default: 10000, doc: 'default server RPC timeout in ms' },
  { key: 'provisionRetryAfterMs', env: 'FLEETGATE_PROVISION_RETRY_AFTER_MS', flag: 'provision-retry-after-ms', kind: 'int', default: 3000, doc: 'age in ms after which a repeat provisioning request for a never-connected device returns its credentials again' },
  { key: 'batchMaxRows', env: 'FLEETGATE_BATCH_MAX_ROWS', flag: 'batch-max-rows', kind: 'int', default: 5000, doc: 'most rows in one telemetry commit' },
  { key: 'batchMaxDelayMs', env: 'FLEETGATE_BATCH_MAX_DELAY_MS', flag: 'batch-max-delay-ms', kind: 'int', default: 0, doc: 'longest wait before a telemetry commit in ms' },
  { key: 'sqliteSynchronous', env: 'FLEETGATE_SQLITE_SYNCHRONOUS', flag: 'sqlite-synchronous', kind: 'enum', values: ['normal', 'full'], default: 'normal', doc: 'SQLite durability: normal (survives process kill) or full (survives power loss)' },
  { key: 'logLevel', env: 'FLEETGATE_LOG_LEVEL', flag: 'log-level', kind: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', doc: 'log level' },
];

/** Invalid configuration: the CLI prints the message and exits with code 2. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function coerce(spec: OptionSpec, raw: unknown, origin: string): unknown {
  const where = `${spec.key} (${origin})`;
  switch (spec.kind) {
    case 'string':
    case 'optional-string': {
      if (raw === undefined || raw === null || raw === '') {
        if (spec.kind === 'optional-string') return undefined;
        throw new ConfigError(`${where} must not be empty`);
      }
      if (typeof raw !== 'string') throw new ConfigError(`${where} must be a string, got ${JSON.stringify(raw)}`);
      return raw;
    }
    case 'port':
    case 'int': {
      const text = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim() : '';
      if (!/^\d+$/.test(text)) throw new ConfigError(`${where} must be a whole number, got ${JSON.stringify(raw)}`);
      const value = Number(text);
      if (spec.kind === 'port' && value > 65535) throw new ConfigError(`${where} must be a port number 0-65535, got ${value}`);
      if (!Number.isSafeInteger(value)) throw new ConfigError(`${where} is too large: ${text}`);
      return value;
    }
    case 'enum': {
      const text = typeof raw === 'string' ? raw.toLowerCase() : raw;
      if (typeof text !== 'string' || !spec.values!.includes(text)) {
        throw new ConfigError(`${where} must be one of ${spec.values!.join(', ')}, got ${JSON.stringify(raw)}`);
      }
      return text;
    }
  }
}

export interface ConfigSources {
  /** Path of a JSON config file whose keys are Config keys. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Values from CLI flags, keyed by Config key. */
  flags?: Partial<Record<keyof Config, unknown>>;
}

/** Builds the configuration; throws ConfigError naming the option and where it came from. */
export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? {};
  let fileValues: Record<string, unknown> = {};
  const file = sources.file ?? env.FLEETGATE_CONFIG;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
    }
    try {
      fileValues = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof fileValues !== 'object' || fileValues === null || Array.isArray(fileValues)) {
      throw new ConfigError(`config file ${file} must hold a JSON object`);
    }
    const known = new Set(OPTIONS.map((o) => o.key as string));
    const unknown = Object.keys(fileValues).filter((k) => !known.has(k));
    if (unknown.length > 0) throw new ConfigError(`config file ${file} has unknown keys: ${unknown.join(', ')}`);
  }
  const config: Record<string, unknown> = {};
  for (const spec of OPTIONS) {
    let value = spec.default;
    if (spec.key in fileValues) value = coerce(spec, fileValues[spec.key], `config file ${file}`);
    if (env[spec.env] !== undefined) value = coerce(spec, env[spec.env], spec.env);
    const flag = sources.flags?.[spec.key];
    if (flag !== undefined) value = coerce(spec, flag, `--${spec.flag}`);
    config[spec.key] = value;
  }
  const result = config as unknown as Config;
  if (!result.database.startsWith('postgres://') && !result.database.startsWith('postgresql://') && /^[a-z]+:\/\//.test(result.database)) {
    throw new ConfigError(`database (FLEETGATE_DATABASE) must be a file path or a postgres:// URL, got ${result.database}`);
  }
  if (result.bus !== 'memory' && !result.bus.startsWith('redis://')) {
    throw new ConfigError(`bus (FLEETGATE_BUS) must be "memory" or a redis:// URL, got ${result.bus}`);
  }
  return result;
}
