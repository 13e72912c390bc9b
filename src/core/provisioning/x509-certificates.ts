/**
 * Pure helpers of X.509 certificate-chain provisioning (spec §7): parsing the chain a TLS client presented, the
 * "each certificate is signed by the next one" check, and the device name taken from the leaf's subject CN.
 * No I/O; node:crypto parses and verifies.
 */
import { X509Certificate } from 'node:crypto';
import { sha3Hex, stripCertificate } from '../credentials.ts';

/** Longest chain accepted (leaf included); real device chains have 2-4 certificates. */
export const MAX_CHAIN_LENGTH = 10;

/** One certificate of a presented chain. */
export interface ChainCertificate {
  /** Base64 of the DER encoding: the X509_CERTIFICATE credentials value (spec §6). */
  base64: string;
  /** spec §7 step 4 / §8.5: SHA3-256 hex of `base64`, the credentials id and the chain profile's provision key. */
  hash: string;
  x509: X509Certificate;
}

/** Why a presented chain was not accepted (spec §7 step 3); safe to log: names subjects, never certificate contents. */
export class InvalidChain extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidChain';
  }
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;

/**
 * Parses a chain, leaf first. Each entry is PEM (one or more certificates) or the bare Base64 of one DER certificate.
 * Throws InvalidChain for an empty chain, an over-long one, or anything that is not a certificate.
 */
export function parseChain(entries: readonly string[]): ChainCertificate[] {
  const bodies: string[] = [];
  for (const entry of entries) {
    if (typeof entry !== 'string') throw new InvalidChain('certificate is not a string');
    const blocks = [...entry.matchAll(PEM_BLOCK)].map((m) => m[1]!);
    bodies.push(...(blocks.length > 0 ? blocks : [entry]));
  }
  if (bodies.length === 0) throw new InvalidChain('no certificate');
  if (bodies.length > MAX_CHAIN_LENGTH) throw new InvalidChain(`more than ${MAX_CHAIN_LENGTH} certificates`);
  return bodies.map((body, i) => {
    const der = Buffer.from(stripCertificate(body).replace(/\s/g, ''), 'base64');
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(der);
    } catch {
      throw new InvalidChain(`certificate ${i} cannot be parsed`);
    }
    // Re-encoded from the DER, so the hash does not depend on how the Base64 was wrapped.
    const base64 = x509.raw.toString('base64');
    return { base64, hash: sha3Hex(base64), x509 };
  });
}

/** A certificate's subject on one line, for logs (`CN=device-42, O=Acme`). */
export function subjectOf(cert: ChainCertificate): string {
  return cert.x509.subject.split('\n').join(', ');
}

/**
 * spec §7 step 3: each certificate must be issued (names, key identifiers) and signed by the next one in the chain.
 * Only that: no trust store, no validity dates (ThingsBoard's trust manager does the same). Throws InvalidChain.
 */
export function verifyChain(chain: readonly ChainCertificate[]): void {
  for (let i = 0; i + 1 < chain.length; i++) {
    const cert = chain[i]!;
    const issuer = chain[i + 1]!;
    let signed = false;
    try {
      signed = cert.x509.checkIssued(issuer.x509) && cert.x509.verify(issuer.x509.publicKey);
    } catch {
      signed = false; // e.g. a key type node:crypto cannot use: not verifiable, so not accepted
    }
    if (!signed) throw new InvalidChain(`certificate ${i} (${subjectOf(cert)}) is not signed by certificate ${i + 1} (${subjectOf(issuer)})`);
  }
}

/** True when `now` is inside the certificate's validity period. */
export function isCurrentlyValid(cert: ChainCertificate, now = Date.now()): boolean {
  return Date.parse(cert.x509.validFrom) <= now && now <= Date.parse(cert.x509.validTo);
}

/**
 * The first CN of the subject (DER order), escaped as ThingsBoard's BouncyCastle `IETFUtils.valueToString` escapes it
 * (`\` before `,"\+=<>;`, a leading `#`, and leading/trailing spaces), so device names match ThingsBoard's.
 */
export function commonName(cert: ChainCertificate): string | undefined {
  const cn = cert.x509.toLegacyObject().subject?.CN;
  const first = Array.isArray(cn) ? cn[0] : cn;
  if (typeof first !== 'string') return undefined;
  let escaped = first.replace(/[,"\\+=<>;]/g, (c) => `\\${c}`);
  if (escaped.startsWith('#')) escaped = `\\${escaped}`;
  const lead = /^ */.exec(escaped)![0].length;
  const trail = lead === escaped.length ? 0 : /[ ]*$/.exec(escaped)![0].length;
  return '\\ '.repeat(lead) + escaped.slice(lead, escaped.length - trail) + '\\ '.repeat(trail);
}

/** The outcome of applying a profile's certificateRegExPattern to a CN. */
export type NameMatch = { name: string } | { error: string };

/**
 * spec §7 step 4: the device name is group 1 of the first match (Java `find()`) of `pattern` in `cn`. A missing or
 * invalid pattern, no CN, no match, or no group 1 is an error. fleetgate also refuses an empty group (ThingsBoard
 * would then create a device with a random name).
 */
export function deviceNameFromCn(cn: string | undefined, pattern: unknown): NameMatch {
  if (typeof pattern !== 'string') return { error: 'the profile has no certificateRegExPattern' };
  if (cn === undefined) return { error: 'the leaf certificate has no CN' };
  let regex: RegExp;
  try {
    regex = new RegExp(pattern);
  } catch {
    return { error: 'certificateRegExPattern is not a valid regular expression' };
  }
  const match = regex.exec(cn);
  if (!match) return { error: 'the CN does not match certificateRegExPattern' };
  const name = match[1];
  if (name === undefined) return { error: 'certificateRegExPattern has no group 1, or it did not match' };
  if (name.trim() === '') return { error: 'certificateRegExPattern group 1 is empty' };
  return { name };
}
