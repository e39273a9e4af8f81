// Operator configuration: the only reader of process.env (CONVENTIONS layout). Validated once at start; a bad
// value stops the process with a message naming the variable.
import { z } from 'zod';

const bool = z.enum(['true', 'false']).transform((v) => v === 'true');

const schema = z.object({
  KEYLESS_CLUSTER_NAME: z.string().min(1).max(128).optional(),
  KEYLESS_WORKERS: z.coerce.number().int().min(1).max(64).default(4),
  KEYLESS_RESYNC_SECONDS: z.coerce.number().int().min(5).default(600),
  KEYLESS_HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  KEYLESS_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  KEYLESS_LEADER_ELECTION: bool.default(true),
  KEYLESS_LEADER_ELECTION_NAMESPACE: z.string().optional(),
  // Writes are paced to a cloud's write limit (IAM's mutating calls, ARM writes, setIamPolicy); reads have their own
  // budget. docs/benchmarks.md measures why one shared bucket is slower and throttles.
  KEYLESS_CLOUD_WRITES_PER_SECOND: z.coerce.number().positive().default(10),
  KEYLESS_CLOUD_WRITE_BURST: z.coerce.number().int().positive().default(1),
  KEYLESS_CLOUD_READS_PER_SECOND: z.coerce.number().positive().default(100),
  KEYLESS_AWS_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(3),
  KEYLESS_CLOUD_CALL_TIMEOUT_SECONDS: z.coerce.number().int().min(1).default(30),
  KEYLESS_RECONCILE_TIMEOUT_SECONDS: z.coerce.number().int().min(5).default(300),
  KEYLESS_VERIFY_GRACE_SECONDS: z.coerce.number().int().min(0).default(120),
  // The AWS SDK reads its endpoint overrides itself; they are read here only to name the endpoint in a timeout.
  AWS_ENDPOINT_URL: z.string().optional(),
  AWS_ENDPOINT_URL_IAM: z.string().optional(),
  AWS_ENDPOINT_URL_EKS: z.string().optional(),
  AWS_ENDPOINT_URL_STS: z.string().optional(),
  // EKS Auth (AssumeRoleForPodIdentity, for CredentialsVerified) is called without an SDK client, so its override is
  // read here, with the name the SDKs give it.
  AWS_ENDPOINT_URL_EKS_AUTH: z.string().optional(),
  POD_NAMESPACE: z.string().optional(),
  POD_NAME: z.string().optional(),
});

export interface Config {
  /** Ownership marker for this cluster; derived from the kube-system namespace UID when unset. */
  clusterName: string | undefined;
  workers: number;
  resyncMs: number;
  httpPort: number;
  logLevel: string;
  leaderElection: { enabled: boolean; namespace: string; name: string; identity: string };
  /** Per CloudAccount (and per AWS service): writes paced to the cloud's write limit, reads on their own budget. */
  cloudBudget: { writesPerSecond: number; writeBurst: number; readsPerSecond: number };
  awsMaxAttempts: number;
  /** The deadline of one cloud API call, SDK retries included; the rate limiter's wait does not count. */
  cloudCallTimeoutMs: number;
  /** A reconcile still running after this long is given up on and retried with backoff. */
  reconcileTimeoutMs: number;
  /** CredentialsVerified: how long after a change a refused exchange is reported as pending (the cloud catching up). */
  verificationGraceMs: number;
  /** The AWS SDK's endpoint overrides (service-specific, else AWS_ENDPOINT_URL); undefined means AWS's own. */
  awsEndpoints: { iam: string | undefined; eks: string | undefined; sts: string | undefined; eksAuth: string | undefined };
}

export function loadConfig(env: NodeJS.ProcessEnv, hostname: string): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  return {
    clusterName: e.KEYLESS_CLUSTER_NAME,
    workers: e.KEYLESS_WORKERS,
    resyncMs: e.KEYLESS_RESYNC_SECONDS * 1000,
    httpPort: e.KEYLESS_HTTP_PORT,
    logLevel: e.KEYLESS_LOG_LEVEL,
    leaderElection: {
      enabled: e.KEYLESS_LEADER_ELECTION,
      namespace: e.KEYLESS_LEADER_ELECTION_NAMESPACE ?? e.POD_NAMESPACE ?? 'keyless-system',
      name: 'keyless-operator',
      identity: e.POD_NAME ?? `${hostname}-${process.pid}`,
    },
    cloudBudget: { writesPerSecond: e.KEYLESS_CLOUD_WRITES_PER_SECOND, writeBurst: e.KEYLESS_CLOUD_WRITE_BURST, readsPerSecond: e.KEYLESS_CLOUD_READS_PER_SECOND },
    awsMaxAttempts: e.KEYLESS_AWS_MAX_ATTEMPTS,
    cloudCallTimeoutMs: e.KEYLESS_CLOUD_CALL_TIMEOUT_SECONDS * 1000,
    reconcileTimeoutMs: e.KEYLESS_RECONCILE_TIMEOUT_SECONDS * 1000,
    verificationGraceMs: e.KEYLESS_VERIFY_GRACE_SECONDS * 1000,
    // Empty counts as unset, as it does for the SDK.
    awsEndpoints: {
      iam: e.AWS_ENDPOINT_URL_IAM || e.AWS_ENDPOINT_URL || undefined,
      eks: e.AWS_ENDPOINT_URL_EKS || e.AWS_ENDPOINT_URL || undefined,
      sts: e.AWS_ENDPOINT_URL_STS || e.AWS_ENDPOINT_URL || undefined,
      eksAuth: e.AWS_ENDPOINT_URL_EKS_AUTH || e.AWS_ENDPOINT_URL || undefined,
    },
  };
}
