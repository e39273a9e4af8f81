// Operator configuration: the only reader of process.env (CONVENTIONS layout). Validated once at start; a bad
// value stops the process with a message naming the variable.
import { EnvReader } from './env.ts';

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
  const e = new EnvReader(env);
  const seconds = (name: string, fallback: number, min: number) => e.number(name, fallback, { int: true, min }) * 1000;
  const config: Config = {
    clusterName: e.string('KEYLESS_CLUSTER_NAME'),
    workers: e.number('KEYLESS_WORKERS', 4, { int: true, min: 1, max: 64 }),
    resyncMs: seconds('KEYLESS_RESYNC_SECONDS', 600, 5),
    httpPort: e.number('KEYLESS_HTTP_PORT', 8080, { int: true, min: 0, max: 65535 }),
    logLevel: e.oneOf('KEYLESS_LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace'], 'info'),
    leaderElection: {
      enabled: e.bool('KEYLESS_LEADER_ELECTION', true),
      namespace: e.string('KEYLESS_LEADER_ELECTION_NAMESPACE') ?? e.string('POD_NAMESPACE') ?? 'keyless-system',
      name: 'keyless-operator',
      identity: e.string('POD_NAME') ?? `${hostname}-${process.pid}`,
    },
    // Writes are paced to a cloud's write limit (IAM's mutating calls, ARM writes, setIamPolicy); reads have their
    // own budget. docs/benchmarks.md measures why one shared bucket is slower and throttles.
    cloudBudget: {
      writesPerSecond: e.number('KEYLESS_CLOUD_WRITES_PER_SECOND', 10, { positive: true }),
      writeBurst: e.number('KEYLESS_CLOUD_WRITE_BURST', 1, { int: true, min: 1 }),
      readsPerSecond: e.number('KEYLESS_CLOUD_READS_PER_SECOND', 100, { positive: true }),
    },
    awsMaxAttempts: e.number('KEYLESS_AWS_MAX_ATTEMPTS', 3, { int: true, min: 1, max: 10 }),
    cloudCallTimeoutMs: seconds('KEYLESS_CLOUD_CALL_TIMEOUT_SECONDS', 30, 1),
    reconcileTimeoutMs: seconds('KEYLESS_RECONCILE_TIMEOUT_SECONDS', 300, 5),
    verificationGraceMs: seconds('KEYLESS_VERIFY_GRACE_SECONDS', 120, 0),
    // The AWS SDK reads its endpoint overrides itself (service-specific, else AWS_ENDPOINT_URL; empty counts as
    // unset); they are read here only to name the endpoint in a timeout. EKS Auth (AssumeRoleForPodIdentity, for
    // CredentialsVerified) is called without an SDK client, so its override is read here, with the SDKs' name.
    awsEndpoints: {
      iam: e.string('AWS_ENDPOINT_URL_IAM') ?? e.string('AWS_ENDPOINT_URL'),
      eks: e.string('AWS_ENDPOINT_URL_EKS') ?? e.string('AWS_ENDPOINT_URL'),
      sts: e.string('AWS_ENDPOINT_URL_STS') ?? e.string('AWS_ENDPOINT_URL'),
      eksAuth: e.string('AWS_ENDPOINT_URL_EKS_AUTH') ?? e.string('AWS_ENDPOINT_URL'),
    },
  };
  e.done();
  return config;
}
