/**
 * MQTT over TLS (spec §10: port 8883, TLSv1.2+) and X.509 client-certificate authentication (spec §8.1 step 1): a
 * device that presents a client certificate is identified by the SHA3-256 of its Base64 DER, the credentials id of
 * X509_CERTIFICATE credentials. As in ThingsBoard, the chain is not checked against a CA: trust comes from the
 * certificate being registered for a device, or from X.509 chain provisioning (spec §7); an expired leaf is refused.
 */
import type { DetailedPeerCertificate, TLSSocket, TlsOptions } from 'node:tls';
import { sha3Hex } from '../../core/credentials.ts';
import type { TransportContext } from './connection.ts';

/** Certificate and key of the TLS listener (PEM), and optionally CAs to send in the chain. */
export interface MqttTlsOptions {
  /** TLS port (spec §10: 8883); 0 picks a free one. */
  port: number;
  cert: string | Buffer;
  key: string | Buffer;
  ca?: string | Buffer;
}

/** What a TLS handshake says about the client. */
export type ClientCertificate =
  | { kind: 'none' }
  | {
      kind: 'valid';
      /** spec §8.1: SHA3-256 hex of the leaf's Base64 DER. */
      hash: string;
      /** spec §7 step 2: the presented chain, leaf first, as Base64 DER (see {@link presentedChain}). */
      chain: string[];
      /** Settles when chain provisioning has decided (spec §7 step 4); CONNECT waits for it. Never rejects. */
      provisioned?: Promise<void>;
    }
  | { kind: 'expired' };

/** Node TLS server options: client certificates requested, not required, and not chain-verified (see above). */
export function tlsServerOptions(o: MqttTlsOptions): TlsOptions {
  return { cert: o.cert, key: o.key, ca: o.ca, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' };
}

/** The client certificate of a TLS connection: the leaf hashed as spec §8.1 says (SHA3 of Base64(DER)), and its chain. */
export function clientCertificate(socket: TLSSocket, now = Date.now()): ClientCertificate {
  const cert = socket.getPeerCertificate(true);
  if (!cert || !cert.raw || cert.raw.length === 0) return { kind: 'none' };
  const validTo = Date.parse(cert.valid_to);
  const validFrom = Date.parse(cert.valid_from);
  if (!(validTo >= now) || !(validFrom <= now)) return { kind: 'expired' };
  return { kind: 'valid', hash: sha3Hex(cert.raw.toString('base64')), chain: presentedChain(cert) };
}

/** More links than any real chain has: a guard against a malformed issuer graph. */
const MAX_LINKS = 10;

/**
 * spec §7 step 2: the chain the client presented, leaf first, as Base64 DER. Node has no list of the presented
 * certificates in their order; `getPeerCertificate(true)` gives the leaf with `issuerCertificate` links, which Node
 * builds by looking each certificate's issuer up (by name and key identifier, not signature) among the presented ones,
 * dropping presented certificates that are nobody's issuer, and ending at a self-signed one that links to itself.
 * When the last presented certificate is not self-signed, Node may add its issuer from the listener's trust store
 * (`ca`, or Node's bundled root CAs when `ca` is not set): such a CA is then treated as presented. The signatures
 * are checked by core (spec §7 step 3).
 */
export function presentedChain(leaf: DetailedPeerCertificate): string[] {
  const chain: string[] = [];
  const seen = new Set<DetailedPeerCertificate>();
  for (let cert: DetailedPeerCertificate | undefined = leaf; cert?.raw?.length && !seen.has(cert) && chain.length < MAX_LINKS; cert = cert.issuerCertificate) {
    seen.add(cert);
    chain.push(cert.raw.toString('base64'));
  }
  return chain;
}

/**
 * spec §7: chain provisioning for a TLS client, started right after the handshake so it overlaps the client's CONNECT,
 * which waits for it and then authenticates by the leaf's hash as always (spec §7 step 6). ThingsBoard rejects the
 * handshake itself when a certificate is not signed by the next one ("Invalid Chain of X509 Certificates. "). Node
 * cannot: with requestCert and rejectUnauthorized false it completes every handshake and offers no hook to refuse the
 * client's certificate, so `close` ends the connection right after the handshake instead. Never rejects.
 */
export async function provisionByChain(ctx: TransportContext, certificate: Extract<ClientCertificate, { kind: 'valid' }>, address: string | undefined, close: () => void): Promise<void> {
  try {
    const result = await ctx.core.x509Provisioning.provisionByChain(certificate.chain, { transport: 'mqtt', address });
    if (result.status !== 'INVALID_CHAIN') return;
    // Subjects and hashes only: never certificate contents (DESIGN 6).
    ctx.logger.warn({ event: 'x509_chain_invalid', transport: 'mqtt', address, leafHash: certificate.hash, detail: result.detail }, 'mqtt: invalid chain of X509 certificates, connection closed');
    close();
  } catch (err) {
    // A core failure (store down): the CONNECT that follows is refused if the leaf is unknown.
    ctx.logger.error({ err, event: 'x509_provision', transport: 'mqtt', address }, 'mqtt: x509 chain provisioning failed');
  }
}
