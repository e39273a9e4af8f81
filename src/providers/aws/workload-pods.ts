// Which running pods of a ServiceAccount still depend on a credential path. The EKS webhooks inject credentials
// only when a pod is created, so a pod started before a mechanism switch keeps the old path until it restarts;
// Keyless keeps that path's trust until no such pod is left.
import type { V1Pod } from '@kubernetes/client-node';

export type CredentialPath = 'IRSA' | 'PodIdentity';

export interface WorkloadPods {
  /** Pods of `serviceAccount` (not finished) whose credentials come through `path` (for IRSA: to role `roleArn`). */
  countDependent(namespace: string, serviceAccount: string, path: CredentialPath, roleArn: string): Promise<number>;
}

const IRSA_ENV = new Set(['AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE']);
const POD_IDENTITY_ENV = new Set(['AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE']);

function roleArnOf(pod: V1Pod): string | undefined {
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    const value = c.env?.find((e) => e.name === 'AWS_ROLE_ARN')?.value;
    if (value) return value;
  }
  return undefined;
}

function injected(pod: V1Pod, env: Set<string>, volume: string): boolean {
  const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  return containers.some((c) => (c.env ?? []).some((e) => env.has(e.name))) || (pod.spec?.volumes ?? []).some((v) => v.name === volume);
}

/**
 * Whether a pod's credentials come through `path`. A pod injected for both uses IRSA: the AWS SDKs try the web
 * identity token before container credentials in their default chains.
 */
export function dependsOn(pod: V1Pod, path: CredentialPath, roleArn?: string): boolean {
  if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return false;
  const irsa = injected(pod, IRSA_ENV, 'aws-iam-token');
  // A pod pointed at another role (or one set by hand) does not depend on this role's trust.
  if (path === 'IRSA') return irsa && (roleArn === undefined || roleArnOf(pod) === roleArn);
  return !irsa && injected(pod, POD_IDENTITY_ENV, 'eks-pod-identity-token');
}
