/**
 * MQTT over TLS (spec §10: port 8883, TLSv1.2+) and X.509 client-certificate authentication (spec §8.1 step 1): a
 * device that presents a client certificate is identified by the SHA3-256 of its Base64 DER, the credentials id of
 * X509_CERTIFICATE credentials. As in ThingsBoard, the chain is not checked against a CA: trust comes from the
 * certificate being registered for a device; an expired certificate is refused.
 */
import type { TLSSocket, TlsOptions } from 'node:tls';
import { sha3Hex } from '../../core/credentials.ts';

/** Certificate and key of the TLS listener (PEM), and optionally CAs to send in the chain. */
export interface MqttTlsOptions {
  /** TLS port (spec §10: 8883); 0 picks a free one. */
  port: number;
  cert: string | Buffer;
  key: string | Buffer;
  ca?: string | Buffer;
}

/** What a TLS handshake says about the client. */
export type ClientCertificate = { kind: 'none' } | { kind: 'valid'; hash: string } | { kind: 'expired' };

/** Node TLS server options: client certificates requested, not required, and not chain-verified (see above). */
export function tlsServerOptions(o: MqttTlsOptions): TlsOptions {
  return { cert: o.cert, key: o.key, ca: o.ca, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' };
}

/** The leaf client certificate of a TLS connection, hashed as spec §8.1 says (SHA3 of Base64(DER)). */
export function clientCertificate(socket: TLSSocket, now = Date.now()): ClientCertificate {
  const cert = socket.getPeerCertificate();
  if (!cert || !cert.raw || cert.raw.length === 0) return { kind: 'none' };
  const validTo = Date.parse(cert.valid_to);
  const validFrom = Date.parse(cert.valid_from);
  if (!(validTo >= now) || !(validFrom <= now)) return { kind: 'expired' };
  return { kind: 'valid', hash: sha3Hex(cert.raw.toString('base64')) };
}
