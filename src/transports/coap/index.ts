/**
 * The CoAP transport (RFC 7252 over UDP, spec §5.4 and §8.4): node-coap's server behind the transport's own intake
 * (duplicate detection, limits, RST handling, small piggybacked answers sent directly), routing to provisioning and
 * the device API in core.
 */
import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns';
import { isIP, type AddressInfo } from 'node:net';
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
import { handleRequest, type RequestDeps } from './requests.ts';

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
  /** Receive buffer asked for the socket, bytes; default config.coapReceiveBufferBytes (0 = the system default). */
  receiveBufferBytes?: number;
}

/** A running CoAP transport. */
export interface CoapTransport {
  /** The UDP port it is bound to (useful with port 0). */
  port: number;
  /** The socket's receive buffer as the kernel reports it, bytes (Linux reports twice the size set, for its overhead). */
  receiveBufferBytes: number;
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
  // Every datagram goes to the IP address it came from: answer the lookup at once instead of through dns.lookup and
  // a tick per send.
  const sock: Socket = createSocket({ type: 'udp4', lookup: (address, family, callback) => (isIP(address) ? callback(null, address, isIP(address)) : lookup(address, family, callback)) });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(deps.port, deps.host, () => {
      sock.off('error', reject);
      resolve();
    });
  });
  sock.on('error', (err) => logger.warn({ err }, 'coap socket error'));
  const receiveBuffer = setReceiveBuffer(sock, options.receiveBufferBytes ?? deps.config.coapReceiveBufferBytes ?? 0, logger);
  let state: 'open' | 'closing' | 'closed' = 'open';
  const send = (datagram: Buffer, to: { address: string; port: number }) => {
    if (state === 'closed') return;
    // No callback: a UDP send that fails (e.g. an unreachable address) is dropped like a lost datagram; the client
    // retransmits (RFC 7252 §4.2). Without one, node sends synchronously with no completion tick.
    sock.send(datagram, to.port, to.address);
  };

  const piggybackReplyMs = options.piggybackReplyMs ?? 500;
  const server = createServer({ piggybackReplyMs, sendAcksForNonConfirmablePackets: true });
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
  let inFlight = 0;
  let drained: (() => void) | undefined;
  const finished = () => {
    if (--inFlight === 0) drained?.();
  };
  const failed = (err: unknown) => {
    onInternalError(err);
    finished();
  };
  const intake: Intake = new Intake({
    server: server as unknown as NodeCoapServer,
    exchanges,
    blocks,
    observers,
    maxPayload,
    send,
    isClosing: () => state !== 'open',
    onInternalError,
    admit,
    piggybackReplyMs,
    process: (request) => {
      inFlight++;
      void handleRequest(requestDeps, request).then(finished, failed);
    },
  });
  const requestDeps: RequestDeps = {
    core,
    deviceApi,
    observers,
    exchanges,
    maxPayload,
    send,
    isOpen: () => state !== 'closed',
    logError: (err, path) => logger.error({ err, path }, 'coap request failed'),
    responseFor: (request) => intake.responseFor(request),
    settle: (request) => intake.settle(request),
  };
  // node-coap's error path (_sendError) would answer 5.00 to 127.0.0.1; every such case is caught by the intake.
  (server as unknown as { _sendError: () => void })._sendError = () => {};
  server.handleRequest = () => intake.onDatagram;
  server.on('request', (_req: IncomingMessage, res: OutgoingMessage) => intake.onNodeCoapRequest(res));
  server.on('error', (err: Error) => logger.warn({ err }, 'coap server error'));
  server.listen(sock);
  const sweep = setInterval(() => observers.sweep(), Math.max(20, Math.min(60_000, timing.nonObserverTtlMs / 4, timing.checkIntervalMs / 4)));
  sweep.unref();
  const port = (sock.address() as AddressInfo).port;
  logger.info({ event: 'listen', transport: 'coap', host: deps.host, port, receiveBufferBytes: receiveBuffer }, 'coap transport listening');

  let closing: Promise<void> | undefined;
  return {
    port,
    receiveBufferBytes: receiveBuffer,
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
        intake.close();
        observers.close();
        state = 'closed';
        server.close(); // clears node-coap's response cache and its retransmission timers
        exchanges.clear();
        blocks.clear();
        await new Promise<void>((r) => sock.close(() => r()));
      })()),
  };
}

/**
 * Asks for a larger socket receive buffer. Requests wait in it while a commit holds the event loop; when it is full
 * the kernel drops datagrams (RcvbufErrors in /proc/net/snmp) and each dropped CON costs its client a retransmission
 * timeout (RFC 7252 §4.2: 2-3 s). The kernel caps the size (Linux: net.core.rmem_max) and reports twice what it set.
 * Returns the size the socket has; a refusal keeps the system default.
 */
function setReceiveBuffer(sock: Socket, requested: number, logger: CoreLogger): number {
  if (requested > 0) {
    try {
      sock.setRecvBufferSize(Math.min(requested, 0x7fffffff));
    } catch (err) {
      logger.warn({ err, requested }, 'coap receive buffer size refused; keeping the system default');
    }
  }
  const obtained = sock.getRecvBufferSize();
  if (requested > 0 && obtained < requested) logger.info({ requested, obtained }, 'coap receive buffer capped by the kernel (Linux: raise net.core.rmem_max)');
  else logger.debug({ requested, obtained }, 'coap receive buffer');
  return obtained;
}
