/**
 * Certificates from a CSR (profile option `certificateSigning`, as AWS IoT's CreateCertificateFromCsr): a device sends
 * `credentialsType: "X509_CERTIFICATE"` with a PEM certificate signing request in `csr`; fleetgate checks its
 * signature and its CN against the device name (or the profile's pattern), signs it with the profile's CA, stores the
 * certificate as the device's X.509 credentials and answers the chain. The device's private key never leaves it.
 *
 * The CA key is read from a file (`caKeyFile`) or given once inline (`caKey`) and then stored only encrypted
 * (`caKeyEncrypted`, AES-256-GCM under the server key); the admin API never returns either. X.509 and CSR handling is
 * @peculiar/x509 over Node's WebCrypto (docs/provisioning-security.md says why).
 */
import type * as x509 from '@peculiar/x509';
import { createCipheriv, createDecipheriv, createHash, createPrivateKey, createPublicKey, randomBytes, webcrypto, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { FleetgateError } from '../errors.ts';
import type { DeviceProfile, ProvisionConfiguration } from '../model.ts';

let library: Promise<typeof x509> | undefined;
/** @peculiar/x509, loaded on first use (it is large; most processes, the CLI among them, never sign). */
function x509Library(): Promise<typeof x509> {
  library ??= (async () => {
    await import('reflect-metadata'); // its dependency injection (tsyringe) needs the polyfill, once per process
    const lib = await import('@peculiar/x509');
    lib.cryptoProvider.set(webcrypto as unknown as Crypto);
    return lib;
  })();
  return library;
}

/** Largest CSR accepted, bytes of PEM (an RSA-4096 CSR is about 1.7 KB). */
export const MAX_CSR_BYTES = 16 * 1024;
const DEFAULT_VALIDITY_DAYS = 365;
const MAX_VALIDITY_DAYS = 3650;

/** Why a CSR was refused; `reason` goes into the FAILURE reply, `detail` into the log and audit. */
export class CsrRejected extends Error {
  constructor(
    readonly reason: 'INVALID_CSR' | 'CN_NOT_MATCHED' | 'CSR_NOT_SUPPORTED',
    readonly detail: string,
  ) {
    super(detail);
    this.name = 'CsrRejected';
  }
}

/** A signed certificate: its PEM, the stored form (Base64 DER, spec §6) and the chain answered to the device. */
export interface IssuedCertificate {
  deviceName: string;
  certificateBody: string;
  chainPem: string;
}

interface SigningConfig {
  caCertificate: string;
  caKeyFile?: string;
  caKeyEncrypted?: string;
  validityDays: number;
  commonNamePattern?: string;
}

const invalid = (message: string) => new FleetgateError('INVALID_ARGUMENT', `provisionConfiguration.certificateSigning: ${message}`);

/** The WebCrypto algorithms of a CA key. */
function algorithmsOf(key: KeyObject): { importAlg: EcKeyImportParams | RsaHashedImportParams; signAlg: EcdsaParams | Algorithm } {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return { importAlg: { name: 'ECDSA', namedCurve: 'P-256' }, signAlg: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams };
    if (curve === 'secp384r1') return { importAlg: { name: 'ECDSA', namedCurve: 'P-384' }, signAlg: { name: 'ECDSA', hash: 'SHA-384' } as EcdsaParams };
  }
  if (key.asymmetricKeyType === 'rsa') return { importAlg: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, signAlg: { name: 'RSASSA-PKCS1-v1_5' } };
  throw invalid('the CA key must be EC P-256, EC P-384 or RSA');
}

function signingConfig(config: ProvisionConfiguration | null | undefined): SigningConfig | undefined {
  const raw = config?.certificateSigning;
  if (raw === undefined || raw === null) return undefined;
  return raw as SigningConfig;
}

/** The CN of a subject, or ''. */
function commonNameOf(name: x509.Name): string {
  return name.getField('CN')[0] ?? '';
}

/** Holds the server key that encrypts CA keys, and the CA keys already loaded. */
export class CertificateAuthorityKeys {
  private readonly aesKey: Buffer;
  private readonly loaded = new Map<string, Promise<{ key: CryptoKey; signAlg: Algorithm; ca: x509.X509Certificate; chain: string }>>();

  constructor(serverKey: string) {
    this.aesKey = createHash('sha256').update(serverKey, 'utf8').digest();
  }

  private encrypt(pem: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.aesKey, iv);
    const body = Buffer.concat([cipher.update(pem, 'utf8'), cipher.final()]);
    return `aesgcm1:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
  }

  private decrypt(sealed: string): string {
    const raw = Buffer.from(sealed.replace(/^aesgcm1:/, ''), 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.aesKey, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }

  /**
   * On profile save: checks `certificateSigning` (a CA certificate, its key from `caKeyFile` or inline `caKey`, the
   * validity and pattern), replaces an inline key by its encrypted form, and keeps the stored key of `previous` when
   * the administrator sent none (a profile read from the API and saved back has no key in it). Returns the config to store.
   */
  async seal(config: ProvisionConfiguration | null | undefined, previous: ProvisionConfiguration | null | undefined): Promise<ProvisionConfiguration | null | undefined> {
    const raw = config?.certificateSigning;
    if (raw === undefined || raw === null) return config;
    if (typeof raw !== 'object' || Array.isArray(raw)) throw invalid('must be an object');
    const s = { ...(raw as Record<string, unknown>) };
    delete s.caKeyStored; // written by the admin API's output (withoutCaKey), not an input
    const inline = typeof s.caKey === 'string';
    if (typeof s.caCertificate !== 'string') throw invalid('caCertificate (PEM) is required');
    const lib = await x509Library();
    let ca: x509.X509Certificate;
    try {
      ca = new lib.X509Certificate(s.caCertificate);
    } catch {
      throw invalid('caCertificate is not a PEM certificate');
    }
    const days = s.validityDays ?? DEFAULT_VALIDITY_DAYS;
    if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > MAX_VALIDITY_DAYS) throw invalid(`validityDays must be a whole number from 1 to ${MAX_VALIDITY_DAYS}`);
    s.validityDays = days;
    if (s.commonNamePattern !== undefined && s.commonNamePattern !== null) {
      if (typeof s.commonNamePattern !== 'string') throw invalid('commonNamePattern must be a regular expression');
      try {
        new RegExp(s.commonNamePattern);
      } catch {
        throw invalid('commonNamePattern is not a valid regular expression');
      }
    }
    let keyPem: string | undefined;
    if (inline) {
      keyPem = s.caKey as string;
      delete s.caKey;
      delete s.caKeyFile;
    } else if (typeof s.caKeyFile === 'string') {
      try {
        keyPem = await readFile(s.caKeyFile, 'utf8');
      } catch (err) {
        throw invalid(`caKeyFile cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      }
      delete s.caKeyEncrypted;
    } else {
      const kept = (previous?.certificateSigning as SigningConfig | undefined)?.caKeyEncrypted;
      if (typeof kept !== 'string') throw invalid('the CA key is required: caKeyFile (a path on the server) or caKey (PEM, stored encrypted)');
      s.caKeyEncrypted = kept;
      keyPem = this.decrypt(kept);
    }
    let key: KeyObject;
    try {
      key = createPrivateKey(keyPem);
    } catch {
      throw invalid('the CA key is not a PEM private key');
    }
    // The key must be the certificate's: compare the public keys.
    const fromKey = createPublicKey(key).export({ type: 'spki', format: 'der' });
    if (!Buffer.from(ca.publicKey.rawData).equals(fromKey)) throw invalid('the CA key does not belong to caCertificate');
    algorithmsOf(key);
    if (inline) s.caKeyEncrypted = this.encrypt(keyPem);
    this.loaded.clear();
    return { ...config!, certificateSigning: s };
  }

  private load(profile: DeviceProfile, signing: SigningConfig): Promise<{ key: CryptoKey; signAlg: Algorithm; ca: x509.X509Certificate; chain: string }> {
    const cacheKey = `${profile.id}:${createHash('sha256').update(JSON.stringify(signing)).digest('hex')}`;
    let pending = this.loaded.get(cacheKey);
    if (!pending) {
      pending = (async () => {
        const pem = signing.caKeyFile ? await readFile(signing.caKeyFile, 'utf8') : this.decrypt(signing.caKeyEncrypted ?? '');
        const keyObject = createPrivateKey(pem);
        const { importAlg, signAlg } = algorithmsOf(keyObject);
        const der = keyObject.export({ type: 'pkcs8', format: 'der' });
        const key = await webcrypto.subtle.importKey('pkcs8', der, importAlg, false, ['sign']);
        const ca = new (await x509Library()).X509Certificate(signing.caCertificate);
        const chain = signing.caCertificate.trim() + '\n';
        return { key: key as CryptoKey, signAlg, ca, chain };
      })();
      pending.catch(() => this.loaded.delete(cacheKey));
      if (this.loaded.size > 100) this.loaded.clear();
      this.loaded.set(cacheKey, pending);
    }
    return pending;
  }

  /**
   * Checks a CSR and signs it with the profile's CA. `deviceName` '' takes the name from the CN (through the pattern).
   * Throws CsrRejected for bad input, FleetgateError when the profile cannot sign.
   */
  async signCsr(profile: DeviceProfile, csrPem: string, deviceName: string): Promise<IssuedCertificate> {
    const signing = signingConfig(profile.profileData?.provisionConfiguration);
    if (!signing) throw new CsrRejected('CSR_NOT_SUPPORTED', 'the profile has no certificateSigning');
    if (Buffer.byteLength(csrPem, 'utf8') > MAX_CSR_BYTES) throw new CsrRejected('INVALID_CSR', `the CSR is larger than ${MAX_CSR_BYTES} bytes`);
    if (!/^\s*-----BEGIN (NEW )?CERTIFICATE REQUEST-----[\s\S]+-----END (NEW )?CERTIFICATE REQUEST-----\s*$/.test(csrPem)) {
      throw new CsrRejected('INVALID_CSR', 'the CSR is not one PEM certificate request');
    }
    const lib = await x509Library();
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new lib.Pkcs10CertificateRequest(csrPem.replace(/(NEW )?CERTIFICATE REQUEST/g, 'CERTIFICATE REQUEST'));
    } catch {
      throw new CsrRejected('INVALID_CSR', 'the CSR cannot be parsed');
    }
    let verified = false;
    try {
      verified = await csr.verify();
    } catch {
      verified = false;
    }
    if (!verified) throw new CsrRejected('INVALID_CSR', 'the CSR signature does not verify');
    const cn = commonNameOf(csr.subjectName);
    const expected = this.nameFromCn(cn, signing.commonNamePattern);
    if (expected === undefined || (deviceName !== '' && expected !== deviceName)) {
      throw new CsrRejected('CN_NOT_MATCHED', `the CSR's CN does not match the device name${signing.commonNamePattern ? ' through the profile pattern' : ''}`);
    }
    const { key, signAlg, ca, chain } = await this.load(profile, signing);
    const serial = randomBytes(16);
    serial[0]! &= 0x7f; // a positive INTEGER (RFC 5280 §4.1.2.2)
    const now = Date.now();
    const certificate = await lib.X509CertificateGenerator.create({
      serialNumber: serial.toString('hex'),
      subject: [{ CN: [cn] }],
      issuer: ca.subjectName,
      notBefore: new Date(now - 5 * 60_000), // devices with a slightly slow clock
      notAfter: new Date(now + signing.validityDays * 86_400_000),
      signingAlgorithm: signAlg,
      publicKey: csr.publicKey,
      signingKey: key,
      extensions: [
        new lib.BasicConstraintsExtension(false, undefined, true),
        new lib.KeyUsagesExtension(lib.KeyUsageFlags.digitalSignature, true),
        new lib.ExtendedKeyUsageExtension([lib.ExtendedKeyUsage.clientAuth]),
        await lib.AuthorityKeyIdentifierExtension.create(ca, false),
        await lib.SubjectKeyIdentifierExtension.create(csr.publicKey),
      ],
    });
    const leafPem = certificate.toString('pem');
    return { deviceName: expected, certificateBody: certificate.toString('base64'), chainPem: `${leafPem.trim()}\n${chain}` };
  }

  /** The device name a CN stands for: the CN itself, or group 1 (else the match) of the profile's pattern. */
  private nameFromCn(cn: string, pattern: string | undefined): string | undefined {
    if (cn === '') return undefined;
    if (!pattern) return cn;
    const m = new RegExp(pattern).exec(cn);
    if (!m) return undefined;
    return m[1] ?? m[0];
  }
}

/** A profile's provisionConfiguration without its stored CA key, for the admin API (never returned). */
export function withoutCaKey(config: ProvisionConfiguration | null | undefined): ProvisionConfiguration | null | undefined {
  const s = config?.certificateSigning as Record<string, unknown> | undefined;
  if (!s || typeof s !== 'object' || (!('caKeyEncrypted' in s) && !('caKey' in s))) return config;
  const { caKeyEncrypted, caKey, ...rest } = s;
  return { ...config!, certificateSigning: { ...rest, caKeyStored: caKeyEncrypted !== undefined || caKey !== undefined } };
}
