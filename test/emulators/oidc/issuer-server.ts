// A public OIDC issuer as a cloud sees one: HTTPS on 127.0.0.1, anonymous, serving discovery documents and key sets
// at whatever paths a test publishes — good ones, and each way one goes wrong (another issuer named, a key set that
// does not parse, an http jwks_uri, nothing at all). The local control plane cannot play this part: it serves its
// discovery document only to authenticated clients, under a CA no cloud trusts.
//
// The certificate comes from a throwaway CA (the Azure emulator's helper); the operator trusts it through
// NODE_EXTRA_CA_CERTS, as it would trust a public CA, so the code under test fetches over real TLS with no test
// switch of its own.
import { generateKeyPairSync } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { emulatorTls } from '../azure/tls.ts';
import type { Jwks } from './jwt.ts';

export interface PublishedAnswer {
  status: number;
  body: string;
}

export interface IssuerServer {
  /** https://127.0.0.1:PORT */
  base: string;
  /** The CA the server certificate chains to: the operator's NODE_EXTRA_CA_CERTS. */
  caFile: string;
  /** An issuer URL on this server: `base` + `path`. */
  issuer(path: string): string;
  /** Serves `answer` at `path` (anything unpublished is a 404). */
  publish(path: string, answer: PublishedAnswer | object): void;
  /** Publishes a well-formed issuer at `path`: its discovery document names it, and its jwks_uri serves `jwks`. */
  publishIssuer(path: string, jwks?: Jwks): string;
  unpublish(path: string): void;
  stop(): Promise<void>;
}

/** A key set with one freshly made RSA signing key. */
export function aJwks(): Jwks {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'test-key', alg: 'RS256', use: 'sig' }] };
}

const isAnswer = (value: object): value is PublishedAnswer => 'status' in value && 'body' in value;

export async function startIssuerServer(tlsDir: string): Promise<IssuerServer> {
  const tls = emulatorTls(tlsDir);
  const routes = new Map<string, PublishedAnswer>();
  const server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const answer = req.method === 'GET' ? routes.get(new URL(req.url ?? '/', 'https://x').pathname) : undefined;
    res.writeHead(answer?.status ?? 404, { 'content-type': 'application/json' });
    res.end(answer?.body ?? '{"error":"not found"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuerServer: IssuerServer = {
    base,
    caFile: tls.caFile,
    issuer: (path) => `${base}${path}`,
    publish: (path, answer) => routes.set(path, isAnswer(answer) ? answer : { status: 200, body: JSON.stringify(answer) }),
    publishIssuer: (path, jwks = aJwks()) => {
      const issuer = `${base}${path}`;
      issuerServer.publish(`${path}/.well-known/openid-configuration`, { issuer, jwks_uri: `${issuer}/openid/v1/jwks`, response_types_supported: ['id_token'], id_token_signing_alg_values_supported: ['RS256'] });
      issuerServer.publish(`${path}/openid/v1/jwks`, jwks);
      return issuer;
    },
    unpublish: (path) => routes.delete(path),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return issuerServer;
}
