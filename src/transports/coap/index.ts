/**
 * The CoAP transport (RFC 7252 over UDP, spec §5.4 and §8.4): node-coap's server behind the transport's own intake
 * (duplicate detection, limits, RST handling), routing to provisioning and the device API in core.
 */
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { createServer, type IncomingMessage, type OutgoingMessage } from 'coap';
import type { Config } from '../../config.ts';
import type { Core, CoreLogger } from '../../core/core-types.ts';
import { DeviceRateLimiter } from '../../core/throttle/device-rate.ts';
import { parseRateLimit } from '../../core/throttle/limits.ts';
import { CoapDeviceApi } from './device-api.ts';
import { Block1Assembler } from './block1.ts';
import { ExchangeCache } from './exchanges.ts';
import { Intake, type NodeCoapServer } from './intake.ts';
import { DEFAULT_OBSERVE_TIMING, ObserveRegistry, type ObserveTiming } from './observe.ts';
import { handleRequest } from './requests.ts';

/** Options with defaults; tests shorten the timings. */
export interface CoapTransportOptions {
  /** Largest request payload, bytes, whole or reassembled from Block1 (default 65536, ThingsBoard's MQTT/RPC limit). */
  maxPayload?: number;
  /** Piggyback window before an empty ACK and a separate response, ms (spec §10: ThingsBoard 500). */
  piggybackReplyMs?: number;
  /** Notification timings (RFC 7252 §4.8, RFC 7641 §4.5). */
  observe?: Partial<ObserveTiming>;
  /** How long close() waits for requests in progress, ms (default 5000). */
  drainTimeoutMs?: number;
  /**
   * Requests per source address, `capacity:seconds` pairs (issue 7 §2); past it 4.29 with Max-Age and a diagnostic
   * naming the limit. Empty (default) = no limit. Retransmissions are not counted.
   */
  requestRatePerSource?: string;
}

/** A running CoAP transport. */
export interface CoapTransport {
  /** The UDP port it is bound to (useful with port 0). */
  port: number;
  /** Live observations (for tests and metrics). */
  observerCount(): number;
  /** Stops taking requests, waits for those in progress, drops observers and closes the socket. Idempotent. */
  close(): Promise<void>;
}

/** Starts the CoAP transport on `host:port` (udp4; port 0 picks a free one). */
export async function startCoapTransport(deps: {
  core: Core;
  config: Config;
  logger: CoreLogger;
  host: string;
  port: number;
  options?: CoapTransportOptions;
  /** Called with the reason of each admission refusal (REQUEST_RATE), for metrics. */
  onRejected?: (reason: string) => void;
}): Promise<CoapTransport> {
  const { core, logger } = deps;
  const options = deps.options ?? {};
  const maxPayload = options.maxPayload ?? 65536;
  const timing: ObserveTiming = { ...DEFAULT_OBSERVE_TIMING, ...options.observe };
  const sock: Socket = createSocket({ type: 'udp4' });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(deps.port, deps.host, () => {
      sock.off('error', reject);
      resolve();
    });
  });
  sock.on('error', (err) => logger.warn({ err }, 'coap socket error'));
  let state: 'open' | 'closing' | 'closed' = 'open';
  const send = (datagram: Buffer, to: { address: string; port: number }) => {
    if (state === 'closed') return;
    sock.send(datagram, to.port, to.address, (err) => err && logger.debug({ err }, 'coap send failed'));
  };

  const server = createServer({ piggybackReplyMs: options.piggybackReplyMs ?? 500, sendAcksForNonConfirmablePackets: true });
  const exchanges = new ExchangeCache();
  const blocks = new Block1Assembler(maxPayload);
  const observers = new ObserveRegistry(send, timing);
  const deviceApi = new CoapDeviceApi(core, observers, maxPayload);
  const onInternalError = (err: unknown) => logger.error({ err }, 'coap transport error');
  const rateLimit = options.requestRatePerSource?.trim() ?? '';
  // Token buckets per source address: the wait they give is the Max-Age of the 4.29 (RFC 8516 §4).
  const sourceRate = new DeviceRateLimiter(parseRateLimit(rateLimit));
  const admit = sourceRate.enabled
    ? (address: string) => {
        const waitMs = sourceRate.take(address);
        if (waitMs === 0) return undefined;
        deps.onRejected?.('REQUEST_RATE');
        return { message: `Request rate limit exceeded: ${rateLimit} per source address (coapRequestRatePerSource)`, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
      }
    : undefined;
  const intake = new Intake({
    server: server as unknown as NodeCoapServer,
    exchanges,
    blocks,
    observers,
    maxPayload,
    send,
    isClosing: () => state !== 'open',
    onInternalError,
    admit,
  });
  // node-coap's error path (_sendError) would answer 5.00 to 127.0.0.1; every such case is caught by the intake.
  (server as unknown as { _sendError: () => void })._sendError = () => {};
  server.handleRequest = () => intake.onDatagram;
  let inFlight = 0;
  let drained: (() => void) | undefined;
  server.on('request', (req: IncomingMessage, res: OutgoingMessage) => {
    const current = intake.current;
    if (!current) return;
    current.emitted = true;
    inFlight++;
    void handleRequest(
      { core, deviceApi, observers, exchanges, maxPayload, send, isOpen: () => state !== 'closed', logError: (err, path) => logger.error({ err, path }, 'coap request failed') },
      req,
      res,
      current,
    )
      .catch(onInternalError)
      .finally(() => {
        if (--inFlight === 0) drained?.();
      });
  });
  server.on('error', (err: Error) => logger.warn({ err }, 'coap server error'));
  server.listen(sock);
  const sweep = setInterval(() => observers.sweep(), Math.max(20, Math.min(60_000, timing.nonObserverTtlMs / 4, timing.checkIntervalMs / 4)));
  sweep.unref();
  const port = (sock.address() as AddressInfo).port;
  logger.info({ event: 'listen', transport: 'coap', host: deps.host, port }, 'coap transport listening');

  let closing: Promise<void> | undefined;
  return {
    port,
    observerCount: () => observers.size,
    close: () =>
      (closing ??= (async () => {
        state = 'closing';
        if (inFlight > 0) {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([new Promise<void>((r) => (drained = r)), new Promise<void>((r) => (timer = setTimeout(r, options.drainTimeoutMs ?? 5000)))]);
          clearTimeout(timer);
        }
        clearInterval(sweep);
        observers.close();
        state = 'closed';
        server.close(); // clears node-coap's response cache and its retransmission timers
        exchanges.clear();
        blocks.clear();
        await new Promise<void>((r) => sock.close(() => r()));
      })()),
  };
}
