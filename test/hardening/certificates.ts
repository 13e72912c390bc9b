/** Certificates made at test time with openssl (issue 7 §5): a server certificate for 127.0.0.1 and device certificates. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
