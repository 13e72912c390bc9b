/**
 * Certificates made at test time with openssl (issue 7 §5): a server certificate for 127.0.0.1, device certificates,
 * and certificate chains (root CA -> intermediate CA -> device) for X.509 chain provisioning (spec §7).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
}

/** A self-signed P-256 certificate and key; `ip` adds a subjectAltName for that address. */
export function selfSigned(commonName: string, ip?: string): KeyPair {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-cert-'));
  try {
    const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${commonName}`, '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')];
    if (ip) args.push('-addext', `subjectAltName=IP:${ip}`);
    execFileSync('openssl', args, { stdio: 'ignore' });
    return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The `skip` option when openssl is missing. */
export function skipUnlessOpenssl(): string | false {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return false;
  } catch {
    if (process.env.FLEETGATE_TEST_REQUIRE_ALL === '1') throw new Error('openssl not found (FLEETGATE_TEST_REQUIRE_ALL=1)');
    return 'openssl not found';
  }
}

/** A certificate authority: its certificate, key and subject CN. */
export interface Authority extends KeyPair {
  commonName: string;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const CA_EXTENSIONS = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'];

/** Runs openssl in a fresh directory; `files` are written first; returns the PEMs of cert.pem and key.pem. */
function inTempDir(files: Record<string, string>, run: (path: (name: string) => string) => void): KeyPair {
  const dir = mkdtempSync(join(tmpdir(), 'fleetgate-chain-'));
  const path = (name: string) => join(dir, name);
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(path(name), text);
    run(path);
    return { cert: readFileSync(path('cert.pem'), 'utf8'), key: readFileSync(path('key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A certificate for `commonName` signed by `issuer` (self-signed without one), with a fresh P-256 key, valid for 2 days.
 * `ca` makes it a CA; `subjectKeyId` (hex) overrides its subject key identifier.
 */
function issue(commonName: string, options: { issuer?: KeyPair; ca: boolean; subjectKeyId?: string }): KeyPair {
  const extensions = [...(options.ca ? CA_EXTENSIONS : ['basicConstraints=CA:FALSE']), ...(options.subjectKeyId ? [`subjectKeyIdentifier=${options.subjectKeyId}`] : [])];
  const issuer = options.issuer;
  if (!issuer) {
    return inTempDir({}, (path) => {
      const args = ['req', '-x509', ...EC_KEY, '-days', '2', '-subj', `/CN=${commonName}`, '-keyout', path('key.pem'), '-out', path('cert.pem')];
      for (const ext of extensions) args.push('-addext', ext);
      execFileSync('openssl', args, { stdio: 'ignore' });
    });
  }
  return inTempDir({ 'issuer.pem': issuer.cert, 'issuer.key': issuer.key, 'ext.cnf': `${extensions.join('\n')}\n` }, (path) => {
    execFileSync('openssl', ['req', '-new', ...EC_KEY, '-subj', `/CN=${commonName}`, '-keyout', path('key.pem'), '-out', path('req.csr')], { stdio: 'ignore' });
    const serial = `0x${randomBytes(8).toString('hex')}`;
    execFileSync(
      'openssl',
      ['x509', '-req', '-in', path('req.csr'), '-CA', path('issuer.pem'), '-CAkey', path('issuer.key'), '-set_serial', serial, '-days', '2', '-extfile', path('ext.cnf'), '-out', path('cert.pem')],
      { stdio: 'ignore' },
    );
  });
}

/** A CA for `commonName`: a self-signed root, or an intermediate when `issuer` is given. */
export function certificateAuthority(commonName: string, issuer?: KeyPair): Authority {
  return { ...issue(commonName, { issuer, ca: true }), commonName };
}

/** A device (leaf) certificate with subject CN `commonName`, signed by `issuer`. */
export function deviceCertificate(commonName: string, issuer: KeyPair): KeyPair {
  return issue(commonName, { issuer, ca: false });
}

/**
 * A CA with the same subject and subject key identifier as `impersonated` but a key of its own: a leaf it signs names
 * `impersonated` as its issuer (so TLS stacks link the two) without being signed by it, a forged chain.
 */
export function impersonatorOf(impersonated: Authority): Authority {
  const out = execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectKeyIdentifier'], { input: impersonated.cert, encoding: 'utf8' });
  const subjectKeyId = out.split('\n')[1]!.trim();
  return { ...issue(impersonated.commonName, { ca: true, subjectKeyId }), commonName: impersonated.commonName };
}

/** Certificates concatenated as one PEM chain, in the order given (leaf first, as TLS clients send it). */
export function pemChain(...certificates: KeyPair[]): string {
  return certificates.map((c) => c.cert.trimEnd() + '\n').join('');
}
