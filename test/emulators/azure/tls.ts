// A throwaway certificate authority and a server certificate for 127.0.0.1, made with openssl at start-up. Azure's
// bearer-token policy refuses plain http, so the emulator must speak TLS, and every client (the test process, the
// operator child via NODE_EXTRA_CA_CERTS) must trust this CA. Nothing here is committed: the keys live in the
// caller's scratch directory and die with it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface EmulatorTls {
  /** PEM of the CA that signed the server certificate: what clients trust. */
  ca: string;
  caFile: string;
  cert: string;
  key: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Reuses the files in `dir` when they exist (so `make dev-up` keeps one CA across restarts), else creates them. */
export function emulatorTls(dir: string): EmulatorTls {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = (name: string) => path.join(dir, name);
  if (!existsSync(file('server.crt')) || !existsSync(file('server.key')) || !existsSync(file('ca.crt'))) {
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '30', '-subj', '/CN=Keyless Azure emulator CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
    writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
    openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '30', '-extfile', 'server.ext'], dir);
  }
  return { ca: readFileSync(file('ca.crt'), 'utf8'), caFile: file('ca.crt'), cert: readFileSync(file('server.crt'), 'utf8'), key: readFileSync(file('server.key'), 'utf8') };
}
