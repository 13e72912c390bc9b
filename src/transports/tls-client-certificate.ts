/**
 * The client certificate of a TLS connection, for every transport that serves TLS (MQTT over TLS, HTTPS). As in
 * ThingsBoard, the chain is not checked against a CA: trust comes from the certificate being registered for a device
 * (spec §8.1 step 1), or from X.509 chain provisioning (spec §7); an expired leaf is refused.
 */
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { sha3Hex } from '../core/credentials.ts';

/** What a TLS handshake says about the client. */
export type ClientCertificate =
  | { kind: 'none' }
  | {
      kind: 'valid';
      /** spec §8.1: SHA3-256 hex of the leaf's Base64 DER. */
      hash: string;
      /** spec §7 step 2: the presented chain, leaf first, as Base64 DER (see {@link presentedChain}). */
      chain: string[];
      /** Settles when chain provisioning has decided (spec §7 step 4); MQTT's CONNECT waits for it. Never rejects. */
      provisioned?: Promise<void>;
    }
  | { kind: 'expired' };

/** The client certificate of a TLS connection: the leaf hashed as spec §8.1 says (SHA3 of Base64(DER)), and its chain. */
export function clientCertificate(socket: TLSSocket, now = Date.now()): ClientCertificate {
  const cert = socket.getPeerCertificate(true);
  if (!cert || !cert.raw || cert.raw.length === 0) return { kind: 'none' };
  const validTo = Date.parse(cert.valid_to);
  const validFrom = Date.parse(cert.valid_from);
  if (!(validTo >= now) || !(validFrom <= now)) return { kind: 'expired' };
  return { kind: 'valid', hash: sha3Hex(cert.raw.toString('base64')), chain: presentedChain(cert) };
}

/** The client certificate of any socket: `none` when it is not TLS. */
export function clientCertificateOf(socket: unknown): ClientCertificate {
  const tls = socket as Partial<TLSSocket> | undefined;
  if (!tls || typeof tls.getPeerCertificate !== 'function' || tls.encrypted !== true) return { kind: 'none' };
  return clientCertificate(tls as TLSSocket);
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
