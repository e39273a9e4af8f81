// Deterministic cloud object names. A name is a pure function of (cluster, namespace, name), so a reconcile that
// crashed between "create" and "record" finds its own object again instead of creating a second one.
import { createHash } from 'node:crypto';

/** A short lowercase hex digest that tells apart names which would otherwise collide after truncation. */
export function shortHash(input: string, length = 8): string {
  return createHash('sha256').update(input).digest('hex').slice(0, length);
}

/**
 * Fits `readable` into `maxLength` characters together with a `-<hash>` suffix of the full identity. The hash
 * is always present: it keeps names from two clusters sharing one cloud account apart, and IAM compares role
 * names case-insensitively, so a readable part alone could collide.
 */
export function boundedName(readable: string, identity: string, maxLength: number, hashLength = 8): string {
  const suffix = `-${shortHash(identity, hashLength)}`;
  const room = maxLength - suffix.length;
  const head = readable.slice(0, room).replace(/[-.]+$/, '');
  return `${head}${suffix}`;
}

/** The identity every derived name hashes: which cluster, which namespace, which WorkloadIdentity. */
export function identityKey(cluster: string, namespace: string, name: string): string {
  return `${cluster}/${namespace}/${name}`;
}

/** IAM role names: 1–64 characters of `[\w+=,.@-]` (IAM CreateRole API reference). */
export const IAM_ROLE_NAME_MAX = 64;

export function awsRoleName(prefix: string, cluster: string, namespace: string, name: string): string {
  return boundedName(`${prefix}${namespace}-${name}`, identityKey(cluster, namespace, name), IAM_ROLE_NAME_MAX);
}

/** The Kubernetes subject a projected ServiceAccount token carries; the only subject Keyless ever trusts. */
export function serviceAccountSubject(namespace: string, serviceAccountName: string): string {
  return `system:serviceaccount:${namespace}:${serviceAccountName}`;
}
