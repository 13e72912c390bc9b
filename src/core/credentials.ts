/**
 * Credentials rules shared by provisioning and the admin API: ThingsBoard's credentialsId derivation
 * (SHA3-256, spec §6, §8.5) and its validations ([CREDVAL]).
 */
import * as nodeCrypto from 'node:crypto';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { CredentialsType } from './model.ts';

/** spec §8.5: strip PEM markers and CR/LF, then SHA3-256 lowercase hex of the UTF-8 bytes. */
export function sha3Hex(text: string): string {
  return createHash('sha3-256').update(stripCertificate(text), 'utf8').digest('hex');
}

/** Certificate body with `-----BEGIN/END CERTIFICATE-----` markers and newlines removed (spec §6 X509_CERTIFICATE). */
export function stripCertificate(pem: string): string {
  return pem.replace(/-----BEGIN CERTIFICATE-----/g, '').replace(/-----END CERTIFICATE-----/g, '').replace(/[\r\n]/g, '');
}

/** spec §8.5 SHA3(delim, a, b): join the non-empty parts with `|`, then hash. */
export function sha3Join(...parts: string[]): string {
  return sha3Hex(parts.filter((p) => p.length > 0).join('|'));
}

/** One-shot hashing (crypto.hash, Node >= 20.12) costs a third of createHash's; this runs on every provisioning request. */
const oneShotHash = (nodeCrypto as { hash?: (algorithm: string, data: string, encoding: 'buffer') => Buffer }).hash;
const sha256 = (text: string): Buffer => (oneShotHash ? oneShotHash('sha256', text, 'buffer') : createHash('sha256').update(text, 'utf8').digest());

/** Compares two secrets in constant time (DESIGN 6): equal-length digests hide the length too. */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

/** The digest `secretMatchesDigest` compares against, for a secret compared often (a profile's provision secret). */
export function secretDigest(secret: string): Buffer {
  return sha256(secret);
}

/** `secretsEqual(secret, presented)` with `secret`'s digest made once beforehand (`secretDigest`). */
export function secretMatchesDigest(digest: Buffer, presented: string): boolean {
  return timingSafeEqual(digest, sha256(presented));
}

/** Why credentials data was rejected; message texts are ThingsBoard's where it has one ([CREDVAL]). */
export class CredentialsRejected extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CredentialsRejected';
  }
}

export interface CredentialsData {
  token?: string;
  clientId?: string;
  userName?: string;
  password?: string;
  certificate?: string;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Builds the stored id and value for credentials of `type`; throws CredentialsRejected with ThingsBoard's message. */
export function buildCredentials(type: CredentialsType, data: CredentialsData): { credentialsId: string; credentialsValue: string | null } {
  switch (type) {
    case 'ACCESS_TOKEN': {
      const token = data.token ?? '';
      if (token === '') throw new CredentialsRejected('Device credentials id should be specified!');
      if (CONTROL.test(token)) throw new CredentialsRejected('Device credentials id must not contain control characters!');
      if (/\s/.test(token)) throw new CredentialsRejected('Device credentials id must not contain white space!');
      return { credentialsId: token, credentialsValue: null };
    }
    case 'MQTT_BASIC': {
      const clientId = data.clientId ?? '';
      const userName = data.userName ?? '';
      const password = data.password ?? '';
      if (clientId === '' && userName === '') throw new CredentialsRejected('Both mqtt client id and user name are empty!');
      if (clientId !== '' && userName === '' && password !== '') throw new CredentialsRejected('Password cannot be specified along with client id');
      for (const part of [clientId, userName, password]) {
        if (CONTROL.test(part)) throw new CredentialsRejected('Mqtt credentials must not contain control characters!');
      }
      // spec §6: username if no client id; SHA3(clientId) if no username; else SHA3(clientId|username).
      const credentialsId = clientId === '' ? userName : userName === '' ? sha3Hex(clientId) : sha3Join(clientId, userName);
      return { credentialsId, credentialsValue: JSON.stringify({ clientId, userName, password }) };
    }
    case 'X509_CERTIFICATE': {
      const body = stripCertificate(data.certificate ?? '').trim();
      if (body === '') throw new CredentialsRejected('Device credentials value should be specified!');
      return { credentialsId: sha3Hex(body), credentialsValue: body };
    }
    case 'LWM2M_CREDENTIALS':
      throw new CredentialsRejected('LWM2M credentials are not supported');
  }
}

/** The stored MQTT_BASIC value as an object (spec §5.1 SUCCESS, MQTT_BASIC). */
export function parseMqttBasicValue(value: string | null): { clientId: string | null; userName: string | null; password: string | null } {
  try {
    const parsed = JSON.parse(value ?? '{}') as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === 'string' ? v : null);
    return { clientId: str(parsed.clientId), userName: str(parsed.userName), password: str(parsed.password) };
  } catch {
    return { clientId: null, userName: null, password: null };
  }
}
