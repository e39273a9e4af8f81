// AnonymousGet over Node's fetch: what a cloud does when it fetches an issuer's documents. No credentials of any kind
// (this is not the Kubernetes client, and it trusts only the system CAs plus NODE_EXTRA_CA_CERTS, never the
// cluster's CA), one deadline for the whole exchange, and a bounded body: a discovery document or a JWKS is a few KiB.
import type { AnonymousGet } from './reachability.ts';

/** How long a cloud gives an issuer, about: AWS STS answers IDPCommunicationError after a few seconds. */
export const ISSUER_FETCH_TIMEOUT_MS = 5_000;

/** Far above any real discovery document or JWKS. */
export const ISSUER_MAX_BODY_BYTES = 256 * 1024;

/** Node's fetch wraps the reason in `cause`: a system error code (ENOTFOUND, ECONNREFUSED) or a TLS one. */
function describe(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `no answer within ${timeoutMs / 1000}s`;
  const cause = err instanceof Error ? (err.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  const known: Record<string, string> = {
    ENOTFOUND: 'the host name does not resolve (ENOTFOUND)',
    EAI_AGAIN: 'the host name could not be resolved (EAI_AGAIN)',
    ECONNREFUSED: 'the connection was refused (ECONNREFUSED)',
    ECONNRESET: 'the connection was reset (ECONNRESET)',
    EHOSTUNREACH: 'the host is unreachable (EHOSTUNREACH)',
    ENETUNREACH: 'the network is unreachable (ENETUNREACH)',
    ETIMEDOUT: 'the connection timed out (ETIMEDOUT)',
  };
  if (code && known[code]) return known[code];
  if (code && /CERT|SIGNATURE|SELF_SIGNED|ERR_TLS|ERR_SSL/.test(code)) {
    return `its TLS certificate is not trusted (${code}): clouds accept only certificates from a public certificate authority`;
  }
  if (code) return code;
  return err instanceof Error ? err.message : String(err);
}

/** The body as text, refusing more than `max` bytes. */
async function boundedText(response: Response, max: number): Promise<string> {
  if (!response.body) return '';
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw new Error(`the answer is larger than ${max / 1024} KiB`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function anonymousGet(opts: { timeoutMs?: number; maxBodyBytes?: number } = {}): AnonymousGet {
  const timeoutMs = opts.timeoutMs ?? ISSUER_FETCH_TIMEOUT_MS;
  const max = opts.maxBodyBytes ?? ISSUER_MAX_BODY_BYTES;
  return async (url) => {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const response = await fetch(url, { headers: { accept: 'application/json' }, signal });
      return { status: response.status, body: await boundedText(response, max) };
    } catch (err) {
      throw new Error(describe(err, timeoutMs), { cause: err });
    }
  };
}
