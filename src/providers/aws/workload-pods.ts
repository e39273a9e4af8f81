// Which credential path a running pod of an AWS identity uses. The EKS webhooks inject credentials only when a pod
// is created, so a pod started before the annotation, the association or a mechanism switch keeps what it had until
// it restarts: WorkloadsUpToDate reports it, and a switch keeps the old path's trust until no such pod is left.
import type { V1Pod } from '@kubernetes/client-node';
import type { AwsMechanism, WorkloadIdentityStatus } from '../../api/types.ts';
import type { PodCredentials } from '../types.ts';

export type CredentialPath = AwsMechanism;

export interface WorkloadPods {
  /** Pods of `serviceAccount` (not finished) whose credentials come through `path` (for IRSA: to role `roleArn`). */
  countDependent(namespace: string, serviceAccount: string, path: CredentialPath, roleArn: string): Promise<number>;
}

const IRSA_ENV = new Set(['AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE']);
const POD_IDENTITY_ENV = new Set(['AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE']);

function containers(pod: V1Pod) {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
}

function roleArnOf(pod: V1Pod): string | undefined {
  for (const c of containers(pod)) {
    const value = c.env?.find((e) => e.name === 'AWS_ROLE_ARN')?.value;
    if (value) return value;
  }
  return undefined;
}

function injected(pod: V1Pod, env: Set<string>, volume: string): boolean {
  return containers(pod).some((c) => (c.env ?? []).some((e) => env.has(e.name))) || (pod.spec?.volumes ?? []).some((v) => v.name === volume);
}

function running(pod: V1Pod): boolean {
  return pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed' && !pod.metadata?.deletionTimestamp;
}

/**
 * The path a pod's AWS credentials come through, if any. A pod injected for both uses IRSA: the AWS SDKs try the web
 * identity token before container credentials in their default chains.
 */
export function credentialPath(pod: V1Pod): CredentialPath | undefined {
  if (injected(pod, IRSA_ENV, 'aws-iam-token')) return 'IRSA';
  if (injected(pod, POD_IDENTITY_ENV, 'eks-pod-identity-token')) return 'PodIdentity';
  return undefined;
}

/** Whether a running pod's credentials come through `path` (for IRSA: to `roleArn`, when given). */
export function dependsOn(pod: V1Pod, path: CredentialPath, roleArn?: string): boolean {
  if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return false;
  if (credentialPath(pod) !== path) return false;
  // A pod pointed at another role (or one set by hand) does not depend on this role's trust.
  return path !== 'IRSA' || roleArn === undefined || roleArnOf(pod) === roleArn;
}

export function awsPodCredentials(mechanism: AwsMechanism): PodCredentials {
  return {
    injected: true,
    staleReason(pod: V1Pod, status: WorkloadIdentityStatus) {
      if (!running(pod)) return undefined;
      const path = credentialPath(pod);
      if (mechanism === 'IRSA') {
        if (path !== 'IRSA') return 'has no IRSA credentials (started before the ServiceAccount was annotated)';
        const role = roleArnOf(pod);
        return role === status.aws?.roleArn ? undefined : `uses role ${role ?? '(none)'}`;
      }
      if (path === 'PodIdentity') return undefined;
      return path === 'IRSA' ? 'still uses IRSA (started before the switch to Pod Identity)' : 'has no Pod Identity credentials (started before the association existed)';
    },
  };
}
