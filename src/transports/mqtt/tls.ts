/**
 * MQTT over TLS (spec §10: port 8883, TLSv1.2+) and X.509 client-certificate authentication (spec §8.1 step 1): a
 * device that presents a client certificate is identified by the SHA3-256 of its Base64 DER, the credentials id of
 * X509_CERTIFICATE credentials. As in ThingsBoard, the chain is not checked against a CA: trust comes from the
 * certificate being registered for a device, or from X.509 chain provisioning (spec §7); an expired leaf is refused.
 */
import type { TlsOptions } from 'node:tls';
import type { TransportContext } from './connection.ts';

/** Certificate and key of the TLS listener (PEM), and optionally CAs to send in the chain. */
export interface MqttTlsOptions {
  /** TLS port (spec §10: 8883); 0 picks a free one. */
  port: number;
  cert: string | Buffer;
  key: string | Buffer;
  ca?: string | Buffer;
}

export { clientCertificate, presentedChain, type ClientCertificate } from '../tls-client-certificate.ts';
import type { ClientCertificate } from '../tls-client-certificate.ts';

/** Node TLS server options: client certificates requested, not required, and not chain-verified (see above). */
export function tlsServerOptions(o: MqttTlsOptions): TlsOptions {
  return { cert: o.cert, key: o.key, ca: o.ca, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' };
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
