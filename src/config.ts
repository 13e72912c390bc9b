/**
 * One typed configuration, merged from defaults < config file (JSON) < environment (FLEETGATE_*) < CLI flags.
 * Every option is declared once in OPTIONS with its env name, flag, type and documentation.
 */
import { readFileSync } from 'node:fs';
import { parseRateLimit } from './core/throttle/limits.ts';

export interface Config {
  /** Bind address for every transport. */
  host: string;
  /** HTTP port (device API, admin API, OpenAPI UI, health). 0 picks a free port. */
  httpPort: number;
  mqttPort: number;
  coapPort: number;
  /** SQLite file path, `:memory:`, or a `postgres://` URL. */
  database: string;
  /** `memory` or a `redis://` (`rediss://` for TLS) URL. */
  bus: string;
  /** PostgreSQL: most connections this node keeps open (ignored for SQLite). */
  pgPoolSize: number;
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
  /** HTTP: time a request has from its first byte (or the connection's opening) to its last header, ms (0 = off). */
  httpHeadersTimeoutMs: number;
  /** HTTP: time a request has from its first byte to its last body byte, ms (0 = off); long polls are not cut by it. */
  httpRequestTimeoutMs: number;
  /** HTTP: idle time after which a kept-alive connection closes, ms. */
  httpKeepAliveTimeoutMs: number;
  /** HTTP: open connections beyond which requests of new connections get 503 (0 = no limit). */
  httpMaxConnections: number;
  /** Default RPC timeout, ms (ThingsBoard: 10000). */
  rpcDefaultTimeout: number;
  /** A repeat provisioning request for a never-connected device gets the same credentials once the device is this old, ms. */
  provisionRetryAfterMs: number;
  /** Telemetry group commit: most rows in one transaction. */
  batchMaxRows: number;
  /** Telemetry group commit: longest wait before a batch is written, ms (0 = next turn of the event loop). */
  batchMaxDelayMs: number;
  /** Shortest time between the starts of two telemetry commits, ms. */
  batchIntervalMs: number;
  /** SQLite `synchronous` pragma: `normal` survives a process kill, `full` also a power loss. */
  sqliteSynchronous: 'normal' | 'full';
  /** CoAP: largest request payload, whole or reassembled from blocks, bytes. */
  coapMaxPayload: number;
  /** CoAP: requests per source address, `capacity:seconds` pairs (empty = no limit). */
  coapRequestRatePerSource: string | undefined;
  /** CoAP: receive buffer asked for the UDP socket, bytes (0 = the system default; the kernel caps it). */
  coapReceiveBufferBytes: number;
  /** MQTT: largest packet accepted and advertised, bytes (spec §10: 65536). */
  mqttMaxPacketSize: number;
  /** MQTT 5: inbound topic aliases a client may use. */
  mqttTopicAliasMaximum: number;
  /** MQTT: time a new connection has to send CONNECT, ms. */
  mqttConnectTimeoutMs: number;
  /** MQTT: unfinished PUBLISH packets per connection before reading pauses. */
  mqttMaxInflight: number;
  /** MQTT: bytes queued for a client that does not read before it is disconnected. */
  mqttMaxWriteBuffer: number;
  /** MQTT: a provisioning session closes this long after its first answer, ms (spec §5.2: 60000). */
  mqttProvisionSessionTtlMs: number;
  /** Client-side RPC with no handler answers `{"error":"timeout"}` after this, ms (spec §10: 60000). */
  clientRpcTimeoutMs: number;
  /** Failed provisioning attempts per source address, ThingsBoard-style `capacity:seconds` pairs ("0" = off). */
  throttleProvisionFailuresPerSource: string;
  /** Failed provisioning attempts per provision key from all sources. */
  throttleProvisionFailuresPerKey: string;
  /** Failed device authentications per source address. */
  throttleAuthFailuresPerSource: string;
  /** Addresses never throttled per source (comma-separated), e.g. a reverse proxy on the same host. */
  throttleExemptAddresses: string;
  /** Where failures are counted: `memory` or a redis:// URL (default: the bus URL when it is Redis). */
  throttleStore: string | undefined;
  /** Telemetry/attribute messages per device, `capacity:seconds` pairs like "20:1,600:60" (empty = no limit). */
  deviceMessageRate: string | undefined;
  /** Open MQTT connections beyond which CONNECT is refused as server busy (0 = no limit). */
  mqttMaxConnections: number;
  /** New MQTT connections per source address, `capacity:seconds` (empty = no limit). */
  mqttConnectRatePerSource: string | undefined;
  /** MQTT over TLS port, used when tlsCert and tlsKey are set. */
  mqttTlsPort: number;
  /** PEM certificate file; with tlsKey enables MQTT over TLS and HTTPS. */
  tlsCert: string | undefined;
  /** PEM private key file for tlsCert. */
  tlsKey: string | undefined;
  /** PEM CA/chain file sent with the certificate. */
  tlsCa: string | undefined;
  /** pino level: fatal, error, warn, info, debug, trace, silent. */
  logLevel: string;
  /** `json`: pino JSON lines; `pretty`: one readable line per event; `auto`: pretty when stdout is a terminal. */
  logFormat: 'auto' | 'json' | 'pretty';
  /** `on` serves GET /metrics (Prometheus text format); `off` does not. */
  metrics: 'on' | 'off';
  /** When set, GET /metrics requires `Authorization: Bearer <metricsToken>`. */
  metricsToken: string | undefined;
  /** A device counts as active this long after its last activity (ThingsBoard's `active`), ms. */
  deviceInactivityTimeoutMs: number;
  /** WebSocket API: live subscriptions one session may hold. */
  wsMaxSubscriptionsPerSession: number;
  /** WebSocket API: open sessions one user may hold on a node. */
  wsMaxSessionsPerUser: number;
  /** WebSocket API: frames queued for a socket before it is closed as a slow reader. */
  wsMaxQueuePerSession: number;
  /** WebSocket API: largest inbound frame, bytes. */
  wsMaxFrameBytes: number;
  /** WebSocket API: time an /api/ws session has to authenticate, ms. */
  wsAuthTimeoutMs: number;
  /** WebSocket API: a session that answers no ping for this long is closed, ms. */
  wsPingTimeoutMs: number;
  /** Cluster: how long a node's announcement of its live subscribers counts without a refresh, ms. */
  wsInterestTtlMs: number;
  /** WebSocket API: least time between two update frames of a subscription, ms (a change after a quieter spell goes out at once); 0: a frame per commit. */
  wsUpdateIntervalMs: number;
  /** OTA rollout: devices notified per group (ThingsBoard queue.core.ota.pack-size: 100). */
  otaRolloutGroupSize: number;
  /** OTA rollout: time per group, ms (ThingsBoard queue.core.ota.pack-interval-ms: 60000). */
  otaRolloutIntervalMs: number;
  /** OTA: largest package accepted on upload, bytes. */
  otaMaxPackageBytes: number;
  /** Sub-devices one gateway may have (issue 14); past it a message naming a new one gets PUBACK 0x97. */
  gatewayMaxSubDevices: number;
  /** Devices one gateway telemetry/attributes message may name; past it PUBACK 0x97, nothing stored. */
  gatewayMaxDevicesPerMessage: number;
  /** Longest sub-device name a gateway may use, characters (ThingsBoard: 255). */
  gatewayMaxDeviceNameLength: number;
  /** Pre-provisioning hook calls in flight at once per node; more wait within the hook's timeout. */
  provisionHookConcurrency: number;
  /** How long a device's credentials keep working after it rotated them, ms. */
  credentialsRotationGraceMs: number;
  /** Data out: messages older than this that still cannot be delivered go to the dead letters, ms. */
  exportDeadLetterAgeMs: number;
  /** Data out: the outbox's disk budget, bytes; past it new messages are stored but not exported (a gap message follows). */
  exportMaxOutboxBytes: number;
  /** Data out: how long a node holds a delivery lane it claimed, ms (a dead node's lanes are taken over after it). */
  exportLeaseMs: number;
  /** Data out: delivery lanes one node delivers at once. */
  exportConcurrency: number;
  /** Data out: first retry delay after a failed delivery, ms (doubled per attempt, with jitter, up to 5 minutes). */
  exportRetryBaseMs: number;
  /** Key that encrypts CA keys stored in device profiles (certificateSigning); generated per database when empty. */
  caKeyEncryptionKey: string | undefined;
  /**
   * Largest size of the SQLite database file in MiB (0 = no limit): beyond it writes fail with SQLITE_FULL, as on a
   * full disk (devices are told "not now", /healthz says why) until rows are deleted. Keeps the file from filling
   * a disk it shares with others.
   */
  sqliteMaxSizeMb: number;
  /**
   * SQLite statements on a writer thread (on) or on the event loop (off); see src/store/sqlite-writer-thread.ts.
   * ':memory:' databases always run on the event loop.
   */
  sqliteWriterThread: 'on' | 'off';
  /**
   * With the writer thread: group commits of fewer parameters (rows times columns) than this run on the event loop's
   * connection, where a light commit costs less CPU in all; 0 sends every group commit to the thread, which takes
   * its statements off the event loop for more CPU in all (bench/RESULTS.md, "HTTP telemetry, session 6").
   */
  sqliteThreadMinParameters: number;
  /**
   * WebSocket API: live update frames per second one node aims to stay under; when more subscriptions are busy than
   * that allows at `wsUpdateIntervalMs`, their interval stretches (points are gathered, never dropped). 0 = no budget.
   */
  wsMaxUpdateFramesPerSecond: number;
  /**
   * Plain HTTP: the lean routes' plain requests (telemetry, attributes, provisioning posts) served straight from the
   * socket's bytes before node:http (on), or every connection through node:http (off); see
   * src/transports/http/socket-front.ts. HTTPS always goes through node:http.
   */
  httpSocketFront: 'on' | 'off';
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
  { key: 'pgPoolSize', env: 'FLEETGATE_PG_POOL_SIZE', flag: 'pg-pool-size', kind: 'int', default: 10, doc: 'PostgreSQL connections per node (pool size)' },
  { key: 'adminUsername', env: 'FLEETGATE_ADMIN_USERNAME', flag: 'admin-username', kind: 'string', default: 'admin@fleetgate.local', doc: 'administrator login created on first start' },
  { key: 'adminPassword', env: 'FLEETGATE_ADMIN_PASSWORD', flag: 'admin-password', kind: 'optional-string', default: undefined, doc: 'administrator password on first start (generated and printed once if empty)' },
  { key: 'jwtSecret', env: 'FLEETGATE_JWT_SECRET', flag: 'jwt-secret', kind: 'optional-string', default: undefined, doc: 'secret signing admin tokens (generated and stored on first start if empty)' },
  { key: 'jwtExpirySeconds', env: 'FLEETGATE_JWT_EXPIRY_SECONDS', flag: 'jwt-expiry-seconds', kind: 'int', default: 9000, doc: 'admin token lifetime in seconds' },
  { key: 'httpMaxPayload', env: 'FLEETGATE_HTTP_MAX_PAYLOAD', flag: 'http-max-payload', kind: 'int', default: 1048576, doc: 'largest HTTP device API body in bytes' },
  { key: 'httpMaxRpcPayload', env: 'FLEETGATE_HTTP_MAX_RPC_PAYLOAD', flag: 'http-max-rpc-payload', kind: 'int', default: 65536, doc: 'largest HTTP RPC reply body in bytes' },
  { key: 'httpLongPollTimeout', env: 'FLEETGATE_HTTP_LONG_POLL_TIMEOUT', flag: 'http-long-poll-timeout', kind: 'int', default: 60000, doc: 'default long-poll timeout in ms' },
  { key: 'httpHeadersTimeoutMs', env: 'FLEETGATE_HTTP_HEADERS_TIMEOUT_MS', flag: 'http-headers-timeout-ms', kind: 'int', default: 10000, doc: 'time an HTTP request has to send its headers in ms; past it 408 naming the limit (0 = off)' },
  { key: 'httpRequestTimeoutMs', env: 'FLEETGATE_HTTP_REQUEST_TIMEOUT_MS', flag: 'http-request-timeout-ms', kind: 'int', default: 30000, doc: 'time an HTTP request has to be fully received (body included) in ms; past it 408 naming the limit; long polls are not cut (0 = off)' },
  { key: 'httpKeepAliveTimeoutMs', env: 'FLEETGATE_HTTP_KEEP_ALIVE_TIMEOUT_MS', flag: 'http-keep-alive-timeout-ms', kind: 'int', default: 72000, doc: 'idle time after which a kept-alive HTTP connection closes in ms' },
  { key: 'httpMaxConnections', env: 'FLEETGATE_HTTP_MAX_CONNECTIONS', flag: 'http-max-connections', kind: 'int', default: 10000, doc: 'open HTTP connections beyond which requests of new connections get 503 naming the limit (0 = no limit)' },
  { key: 'rpcDefaultTimeout', env: 'FLEETGATE_RPC_DEFAULT_TIMEOUT', flag: 'rpc-default-timeout', kind: 'int', default: 10000, doc: 'default server RPC timeout in ms' },
  { key: 'provisionRetryAfterMs', env: 'FLEETGATE_PROVISION_RETRY_AFTER_MS', flag: 'provision-retry-after-ms', kind: 'int', default: 3000, doc: 'age in ms after which a repeat provisioning request for a never-connected device returns its credentials again' },
  { key: 'batchMaxRows', env: 'FLEETGATE_BATCH_MAX_ROWS', flag: 'batch-max-rows', kind: 'int', default: 5000, doc: 'most rows in one telemetry commit' },
  { key: 'batchMaxDelayMs', env: 'FLEETGATE_BATCH_MAX_DELAY_MS', flag: 'batch-max-delay-ms', kind: 'int', default: 0, doc: 'longest wait before a telemetry commit in ms' },
  { key: 'batchIntervalMs', env: 'FLEETGATE_BATCH_INTERVAL_MS', flag: 'batch-interval-ms', kind: 'int', default: 0, doc: 'shortest time between the starts of two telemetry commits in ms; writes arriving sooner wait for the rest of it (only under load). 0: a commit starts on the event-loop turn after the previous one ends, with every write that arrived meanwhile' },
  { key: 'sqliteSynchronous', env: 'FLEETGATE_SQLITE_SYNCHRONOUS', flag: 'sqlite-synchronous', kind: 'enum', values: ['normal', 'full'], default: 'normal', doc: 'SQLite durability: normal (survives process kill) or full (survives power loss)' },
  { key: 'coapMaxPayload', env: 'FLEETGATE_COAP_MAX_PAYLOAD', flag: 'coap-max-payload', kind: 'int', default: 65536, doc: 'largest CoAP request payload in bytes (whole or block-wise)' },
  { key: 'coapRequestRatePerSource', env: 'FLEETGATE_COAP_REQUEST_RATE_PER_SOURCE', flag: 'coap-request-rate-per-source', kind: 'optional-string', default: undefined, doc: 'CoAP requests per source address, "capacity:seconds" pairs; past it 4.29 with Max-Age naming the limit (empty = no limit)' },
  { key: 'coapReceiveBufferBytes', env: 'FLEETGATE_COAP_RECEIVE_BUFFER_BYTES', flag: 'coap-receive-buffer-bytes', kind: 'int', default: 4194304, doc: 'receive buffer of the CoAP UDP socket in bytes, capped by the kernel (Linux: net.core.rmem_max; 0 = system default)' },
  { key: 'mqttMaxPacketSize', env: 'FLEETGATE_MQTT_MAX_PACKET_SIZE', flag: 'mqtt-max-packet-size', kind: 'int', default: 65536, doc: 'largest MQTT packet in bytes' },
  { key: 'mqttTopicAliasMaximum', env: 'FLEETGATE_MQTT_TOPIC_ALIAS_MAXIMUM', flag: 'mqtt-topic-alias-maximum', kind: 'int', default: 10, doc: 'MQTT 5 inbound topic aliases per connection' },
  { key: 'mqttConnectTimeoutMs', env: 'FLEETGATE_MQTT_CONNECT_TIMEOUT_MS', flag: 'mqtt-connect-timeout-ms', kind: 'int', default: 10000, doc: 'time a new MQTT connection has to send CONNECT in ms' },
  { key: 'mqttMaxInflight', env: 'FLEETGATE_MQTT_MAX_INFLIGHT', flag: 'mqtt-max-inflight', kind: 'int', default: 100, doc: 'unacknowledged MQTT publishes per connection before reading pauses' },
  { key: 'mqttMaxWriteBuffer', env: 'FLEETGATE_MQTT_MAX_WRITE_BUFFER', flag: 'mqtt-max-write-buffer', kind: 'int', default: 1048576, doc: 'bytes queued for a slow MQTT client before it is disconnected' },
  { key: 'mqttProvisionSessionTtlMs', env: 'FLEETGATE_MQTT_PROVISION_SESSION_TTL_MS', flag: 'mqtt-provision-session-ttl-ms', kind: 'int', default: 60000, doc: 'an MQTT provisioning session closes this long after its answer in ms' },
  { key: 'clientRpcTimeoutMs', env: 'FLEETGATE_CLIENT_RPC_TIMEOUT_MS', flag: 'client-rpc-timeout-ms', kind: 'int', default: 60000, doc: 'client-side RPC without a handler times out after this in ms' },
  { key: 'throttleProvisionFailuresPerSource', env: 'FLEETGATE_THROTTLE_PROVISION_FAILURES_PER_SOURCE', flag: 'throttle-provision-failures-per-source', kind: 'string', default: '10:60', doc: 'failed provisioning attempts per source address, "capacity:seconds" pairs; past it HTTP 429 / CoAP 4.29 / MQTT reason RATE_LIMITED ("0" = off)' },
  { key: 'throttleProvisionFailuresPerKey', env: 'FLEETGATE_THROTTLE_PROVISION_FAILURES_PER_KEY', flag: 'throttle-provision-failures-per-key', kind: 'string', default: '100:60', doc: 'failed provisioning attempts per provision key from all sources ("0" = off)' },
  { key: 'throttleAuthFailuresPerSource', env: 'FLEETGATE_THROTTLE_AUTH_FAILURES_PER_SOURCE', flag: 'throttle-auth-failures-per-source', kind: 'string', default: '20:60', doc: 'failed device authentications per source address; past it CONNACK 0x97/5, HTTP 429, CoAP 4.29 ("0" = off)' },
  { key: 'throttleExemptAddresses', env: 'FLEETGATE_THROTTLE_EXEMPT_ADDRESSES', flag: 'throttle-exempt-addresses', kind: 'string', default: '127.0.0.1,::1,::ffff:127.0.0.1', doc: 'comma-separated addresses never throttled per source (e.g. a reverse proxy)' },
  { key: 'throttleStore', env: 'FLEETGATE_THROTTLE_STORE', flag: 'throttle-store', kind: 'optional-string', default: undefined, doc: 'where failures are counted: memory or a redis:// URL (default: the bus URL when it is redis://, else memory)' },
  { key: 'deviceMessageRate', env: 'FLEETGATE_DEVICE_MESSAGE_RATE', flag: 'device-message-rate', kind: 'optional-string', default: undefined, doc: 'telemetry/attribute messages per device, "capacity:seconds" pairs like "20:1,600:60" (empty = no limit)' },
  { key: 'mqttMaxConnections', env: 'FLEETGATE_MQTT_MAX_CONNECTIONS', flag: 'mqtt-max-connections', kind: 'int', default: 50000, doc: 'open MQTT connections beyond which CONNECT gets 0x89 server busy / 3 (0 = no limit)' },
  { key: 'mqttConnectRatePerSource', env: 'FLEETGATE_MQTT_CONNECT_RATE_PER_SOURCE', flag: 'mqtt-connect-rate-per-source', kind: 'optional-string', default: undefined, doc: 'new MQTT connections per source address, "capacity:seconds"; past it CONNACK 0x9F / 3' },
  { key: 'mqttTlsPort', env: 'FLEETGATE_MQTT_TLS_PORT', flag: 'mqtt-tls-port', kind: 'port', default: 8883, doc: 'MQTT over TLS port (used when tlsCert and tlsKey are set)' },
  { key: 'tlsCert', env: 'FLEETGATE_TLS_CERT', flag: 'tls-cert', kind: 'optional-string', default: undefined, doc: 'PEM certificate file; with tlsKey enables MQTT over TLS and HTTPS' },
  { key: 'tlsKey', env: 'FLEETGATE_TLS_KEY', flag: 'tls-key', kind: 'optional-string', default: undefined, doc: 'PEM private key file for tlsCert' },
  { key: 'tlsCa', env: 'FLEETGATE_TLS_CA', flag: 'tls-ca', kind: 'optional-string', default: undefined, doc: 'PEM CA/chain file sent with the certificate' },
  { key: 'logLevel', env: 'FLEETGATE_LOG_LEVEL', flag: 'log-level', kind: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', doc: 'log level' },
  { key: 'logFormat', env: 'FLEETGATE_LOG_FORMAT', flag: 'log-format', kind: 'enum', values: ['auto', 'json', 'pretty'], default: 'auto', doc: 'log format: json, pretty, or auto (pretty when stdout is a terminal)' },
  { key: 'metrics', env: 'FLEETGATE_METRICS', flag: 'metrics', kind: 'enum', values: ['on', 'off'], default: 'on', doc: 'serve GET /metrics (Prometheus)' },
  { key: 'metricsToken', env: 'FLEETGATE_METRICS_TOKEN', flag: 'metrics-token', kind: 'optional-string', default: undefined, doc: 'bearer token GET /metrics requires (open when empty)' },
  { key: 'deviceInactivityTimeoutMs', env: 'FLEETGATE_DEVICE_INACTIVITY_TIMEOUT_MS', flag: 'device-inactivity-timeout-ms', kind: 'int', default: 600000, doc: 'a device is "active" (DeviceInfo) this long after its last connect, request or open-session refresh, in ms' },
  { key: 'wsMaxSubscriptionsPerSession', env: 'FLEETGATE_WS_MAX_SUBSCRIPTIONS_PER_SESSION', flag: 'ws-max-subscriptions-per-session', kind: 'int', default: 1000, doc: 'WebSocket API: live subscriptions per session; past it the command gets errorCode 2 (0 = no limit)' },
  { key: 'wsMaxSessionsPerUser', env: 'FLEETGATE_WS_MAX_SESSIONS_PER_USER', flag: 'ws-max-sessions-per-user', kind: 'int', default: 100, doc: 'WebSocket API: open sessions per user on one node; past it close 1008 (0 = no limit)' },
  { key: 'wsMaxQueuePerSession', env: 'FLEETGATE_WS_MAX_QUEUE_PER_SESSION', flag: 'ws-max-queue-per-session', kind: 'int', default: 1000, doc: 'WebSocket API: frames queued for a slow reader before close 1008 "Max pending updates limit reached!" (at least 1)' },
  { key: 'wsMaxFrameBytes', env: 'FLEETGATE_WS_MAX_FRAME_BYTES', flag: 'ws-max-frame-bytes', kind: 'int', default: 32768, doc: 'WebSocket API: largest inbound frame in bytes; larger closes with 1009' },
  { key: 'wsAuthTimeoutMs', env: 'FLEETGATE_WS_AUTH_TIMEOUT_MS', flag: 'ws-auth-timeout-ms', kind: 'int', default: 10000, doc: 'WebSocket API: time /api/ws has to receive its authCmd in ms; past it close 1008' },
  { key: 'wsPingTimeoutMs', env: 'FLEETGATE_WS_PING_TIMEOUT_MS', flag: 'ws-ping-timeout-ms', kind: 'int', default: 30000, doc: 'WebSocket API: close 4500 when no pong for this long in ms (pings every third of it)' },
  { key: 'wsInterestTtlMs', env: 'FLEETGATE_WS_INTEREST_TTL_MS', flag: 'ws-interest-ttl-ms', kind: 'int', default: 30000, doc: 'cluster: a node\'s list of devices with live subscribers expires this long after its last refresh in ms' },
  { key: 'wsUpdateIntervalMs', env: 'FLEETGATE_WS_UPDATE_INTERVAL_MS', flag: 'ws-update-interval-ms', kind: 'int', default: 250, doc: 'WebSocket API: least time between two update frames of a subscription in ms; a change after a quieter spell goes out at once, later ones wait for the rest of the interval and go out together, every point kept in order (0: one frame per commit, as ThingsBoard)' },
  { key: 'otaRolloutGroupSize', env: 'FLEETGATE_OTA_ROLLOUT_GROUP_SIZE', flag: 'ota-rollout-group-size', kind: 'int', default: 100, doc: 'OTA rollout: devices notified per group' },
  { key: 'otaRolloutIntervalMs', env: 'FLEETGATE_OTA_ROLLOUT_INTERVAL_MS', flag: 'ota-rollout-interval-ms', kind: 'int', default: 60000, doc: 'OTA rollout: time per group in ms' },
  { key: 'otaMaxPackageBytes', env: 'FLEETGATE_OTA_MAX_PACKAGE_BYTES', flag: 'ota-max-package-bytes', kind: 'int', default: 1073741824, doc: 'OTA: largest package accepted on upload in bytes' },
  { key: 'gatewayMaxSubDevices', env: 'FLEETGATE_GATEWAY_MAX_SUB_DEVICES', flag: 'gateway-max-sub-devices', kind: 'int', default: 10000, doc: 'sub-devices one gateway may have' },
  { key: 'gatewayMaxDevicesPerMessage', env: 'FLEETGATE_GATEWAY_MAX_DEVICES_PER_MESSAGE', flag: 'gateway-max-devices-per-message', kind: 'int', default: 1000, doc: 'devices one gateway message may name' },
  { key: 'gatewayMaxDeviceNameLength', env: 'FLEETGATE_GATEWAY_MAX_DEVICE_NAME_LENGTH', flag: 'gateway-max-device-name-length', kind: 'int', default: 255, doc: 'longest sub-device name, characters' },
  { key: 'credentialsRotationGraceMs', env: 'FLEETGATE_CREDENTIALS_ROTATION_GRACE_MS', flag: 'credentials-rotation-grace-ms', kind: 'int', default: 3600000, doc: 'how long credentials replaced by a device-initiated rotation keep working in ms, so a lost answer cannot lock the device out' },
  { key: 'caKeyEncryptionKey', env: 'FLEETGATE_CA_KEY_ENCRYPTION_KEY', flag: 'ca-key-encryption-key', kind: 'optional-string', default: undefined, doc: 'key that encrypts CA keys stored in device profiles for CSR signing (generated and stored in the database on first use when empty)' },
  { key: 'provisionHookConcurrency', env: 'FLEETGATE_PROVISION_HOOK_CONCURRENCY', flag: 'provision-hook-concurrency', kind: 'int', default: 16, doc: 'pre-provisioning hook calls in flight at once per node; more wait within the hook timeout' },
  { key: 'exportDeadLetterAgeMs', env: 'FLEETGATE_EXPORT_DEAD_LETTER_AGE_MS', flag: 'export-dead-letter-age-ms', kind: 'int', default: 86_400_000, doc: 'export messages this old that still fail go to the dead letters (ms)' },
  { key: 'exportMaxOutboxBytes', env: 'FLEETGATE_EXPORT_MAX_OUTBOX_BYTES', flag: 'export-max-outbox-bytes', kind: 'int', default: 1_073_741_824, doc: 'disk budget of the export outbox in bytes; past it new messages are not exported' },
  { key: 'exportLeaseMs', env: 'FLEETGATE_EXPORT_LEASE_MS', flag: 'export-lease-ms', kind: 'int', default: 30_000, doc: 'how long a node holds an export delivery lane (ms)' },
  { key: 'exportConcurrency', env: 'FLEETGATE_EXPORT_CONCURRENCY', flag: 'export-concurrency', kind: 'int', default: 4, doc: 'export delivery lanes one node delivers at once' },
  { key: 'exportRetryBaseMs', env: 'FLEETGATE_EXPORT_RETRY_BASE_MS', flag: 'export-retry-base-ms', kind: 'int', default: 1000, doc: 'first retry delay after a failed export delivery (ms)' },
  { key: 'sqliteMaxSizeMb', env: 'FLEETGATE_SQLITE_MAX_SIZE_MB', flag: 'sqlite-max-size-mb', kind: 'int', default: 0, doc: 'largest SQLite database file in MiB; beyond it writes fail as on a full disk (0 = no limit)' },
  { key: 'sqliteWriterThread', env: 'FLEETGATE_SQLITE_WRITER_THREAD', flag: 'sqlite-writer-thread', kind: 'enum', values: ['on', 'off'], default: 'on', doc: 'run SQLite statements on a writer thread (on) or on the event loop (off)' },
  { key: 'wsMaxUpdateFramesPerSecond', env: 'FLEETGATE_WS_MAX_UPDATE_FRAMES_PER_SECOND', flag: 'ws-max-update-frames-per-second', kind: 'int', default: 1000, doc: 'WebSocket API: live update frames per second one node aims to stay under; past it every busy subscription\'s wsUpdateIntervalMs stretches (points gathered, none dropped; 0 = no budget; no effect when wsUpdateIntervalMs is 0)' },
  { key: 'sqliteThreadMinParameters', env: 'FLEETGATE_SQLITE_THREAD_MIN_PARAMETERS', flag: 'sqlite-thread-min-parameters', kind: 'int', default: 8000, doc: 'with the SQLite writer thread: group commits of fewer parameters (rows × columns; the points of a telemetry chunk as rows) than this run on the event loop; 0 = every group commit on the thread' },
  { key: 'httpSocketFront', env: 'FLEETGATE_HTTP_SOCKET_FRONT', flag: 'http-socket-front', kind: 'enum', values: ['on', 'off'], default: 'on', doc: 'plain HTTP: serve the plain telemetry, attribute and provisioning posts straight from the socket before node:http (on) or send every connection through node:http (off)' },
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
  const postgres = /^postgres(ql)?:\/\//i.test(result.database);
  if (!postgres && /^[a-z][a-z0-9+.-]*:\/\//i.test(result.database)) {
    throw new ConfigError(`database (FLEETGATE_DATABASE) must be a file path or a postgres:// URL, got ${result.database}`);
  }
  if (result.bus !== 'memory' && !/^rediss?:\/\//i.test(result.bus)) {
    throw new ConfigError(`bus (FLEETGATE_BUS) must be "memory" or a redis:// URL, got ${result.bus}`);
  }
  for (const key of ['throttleProvisionFailuresPerSource', 'throttleProvisionFailuresPerKey', 'throttleAuthFailuresPerSource', 'deviceMessageRate', 'mqttConnectRatePerSource', 'coapRequestRatePerSource'] as const) {
    try {
      parseRateLimit(result[key] ?? '');
    } catch (err) {
      throw new ConfigError(`${key}: ${(err as Error).message}`);
    }
  }
  if (result.httpHeadersTimeoutMs > 0 && result.httpRequestTimeoutMs > 0 && result.httpHeadersTimeoutMs > result.httpRequestTimeoutMs) {
    throw new ConfigError(`httpHeadersTimeoutMs (${result.httpHeadersTimeoutMs}) must not exceed httpRequestTimeoutMs (${result.httpRequestTimeoutMs})`);
  }
  if (!!result.tlsCert !== !!result.tlsKey) throw new ConfigError('tlsCert (FLEETGATE_TLS_CERT) and tlsKey (FLEETGATE_TLS_KEY) go together: give both or neither');
  // A pool of 0 would make every query wait forever.
  if (result.otaRolloutGroupSize < 1) throw new ConfigError(`otaRolloutGroupSize (FLEETGATE_OTA_ROLLOUT_GROUP_SIZE) must be at least 1, got ${result.otaRolloutGroupSize}`);
  if (result.pgPoolSize < 1) throw new ConfigError(`pgPoolSize (FLEETGATE_PG_POOL_SIZE) must be at least 1, got ${result.pgPoolSize}`);
  return result;
}
