// `kubectl keyless explain`: the whole chain from a running workload to its cloud identity, each link OK or broken
// with the fix — ServiceAccount → WorkloadIdentity → cloud identity → trust (issuer, subject, audience) →
// permissions → the ServiceAccount annotation → what the webhook injected into each pod, or why not → the projected
// token's audience → CredentialsVerified. Pure: the command reads the objects, this judges them. What a pod's
// injection means is the providers' knowledge (Provider.pods), reused here rather than restated.
import type { V1ManagedFieldsEntry, V1Pod, V1ServiceAccount } from '@kubernetes/client-node';
import { AUDIENCE, CONDITION, SERVICE_ACCOUNT_ANNOTATION } from '../api/constants.ts';
import type { Condition, WorkloadIdentity } from '../api/types.ts';
import { findCondition } from '../domain/conditions.ts';
import { AZURE_POD_CREDENTIALS, envOf, USE_LABEL } from '../providers/aks-workload-identity/pods.ts';
import { awsPodCredentials, credentialPath } from '../providers/aws/workload-pods.ts';
import { POD_IDENTITY_PRINCIPAL } from '../providers/eks-pod-identity/trust.ts';
import { checkFederatedPod } from '../providers/gke-workload-identity/federated-pods.ts';
import type { PodCredentials } from '../providers/types.ts';
import { firstNotReady } from './status.ts';
import { table } from './table.ts';

export type LinkState = 'OK' | 'BROKEN' | 'WARN' | '-';

export interface Link {
  state: LinkState;
  link: string;
  detail: string;
  fix?: string;
}

export interface Chain {
  /** The WorkloadIdentity the chain runs through, or undefined when the ServiceAccount has none. */
  identity: WorkloadIdentity | undefined;
  links: Link[];
}

export interface ExplainInput {
  namespace: string;
  /** What was asked for, e.g. deployment/catalog: the restart command names it. */
  workload: { kind: string; name: string };
  pods: V1Pod[];
  /** The ServiceAccount the pods run as (undefined when it does not exist). */
  serviceAccountName: string;
  serviceAccount: V1ServiceAccount | undefined;
  /** The WorkloadIdentities of the namespace. */
  identities: WorkloadIdentity[];
  /** Names of the registered mutating webhooks; undefined when they could not be read. */
  webhooks: string[] | undefined;
}

/** The webhook that injects each mechanism's credentials, by its upstream webhook name. */
const WEBHOOK = { aws: 'pod-identity-webhook.amazonaws.com', azure: 'mutation.azure-workload-identity.io' } as const;

/** The token file variable each injected mechanism sets, and the audience its projected token must carry. */
const TOKEN = {
  IRSA: { env: 'AWS_WEB_IDENTITY_TOKEN_FILE', audience: AUDIENCE.irsa },
  PodIdentity: { env: 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE', audience: POD_IDENTITY_PRINCIPAL },
  WorkloadIdentity: { env: 'AZURE_FEDERATED_TOKEN_FILE', audience: AUDIENCE.azure },
} as const;

const ok = (link: string, detail: string): Link => ({ state: 'OK', link, detail });
const broken = (link: string, detail: string, fix?: string): Link => ({ state: 'BROKEN', link, detail, ...(fix ? { fix } : {}) });
const skipped = (link: string, detail: string): Link => ({ state: '-', link, detail });

function fromCondition(link: string, condition: Condition | undefined, okDetail: string, fix: string): Link {
  if (condition?.status === 'True') return ok(link, okDetail);
  if (!condition) return broken(link, 'not reported yet', 'wait for the operator to reconcile the WorkloadIdentity (is it running?)');
  return broken(link, `${condition.type}=${condition.status} ${condition.reason}: ${condition.message}`, fix);
}

/** When `key` was last set on the ServiceAccount, from its managedFields (each manager's entry carries a time). */
export function annotationSetAt(sa: V1ServiceAccount | undefined, key: string): Date | undefined {
  const times = (sa?.metadata?.managedFields ?? [])
    .filter((e: V1ManagedFieldsEntry) => {
      const annotations = (e.fieldsV1 as { 'f:metadata'?: { 'f:annotations'?: Record<string, unknown> } } | undefined)?.['f:metadata']?.['f:annotations'];
      return annotations !== undefined && `f:${key}` in annotations;
    })
    .map((e) => (e.time ? new Date(e.time) : undefined))
    .filter((t): t is Date => t !== undefined && !Number.isNaN(t.getTime()));
  return times.length ? new Date(Math.max(...times.map((t) => t.getTime()))) : undefined;
}

/** The audience of the projected ServiceAccount token mounted where `file` is, or why there is none. */
export function projectedAudience(pod: V1Pod, file: string): { audience?: string; problem?: string } {
  const container = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.env?.some((e) => e.value === file));
  const mount = container?.volumeMounts?.find((m) => file.startsWith(`${m.mountPath.replace(/\/+$/, '')}/`));
  if (!mount) return { problem: `no volume is mounted where ${file} is` };
  const volume = pod.spec?.volumes?.find((v) => v.name === mount.name);
  const token = volume?.projected?.sources?.find((s) => s.serviceAccountToken)?.serviceAccountToken;
  if (!token) return { problem: `volume ${mount.name} at ${mount.mountPath} is not a projected ServiceAccount token` };
  return { audience: token.audience ?? '(the API server\'s own audience)' };
}

/** The command that recreates the pods: the workload asked about, else the pod's owner, else deleting the pod. */
function restartCommand(input: ExplainInput, pod: V1Pod): string {
  const ns = input.namespace;
  if (input.workload.kind !== 'pod') return `kubectl rollout restart -n ${ns} ${input.workload.kind}/${input.workload.name}`;
  const owner = pod.metadata?.ownerReferences?.find((o) => o.controller);
  const hash = pod.metadata?.labels?.['pod-template-hash'];
  if (owner?.kind === 'ReplicaSet' && hash && owner.name.endsWith(`-${hash}`)) return `kubectl rollout restart -n ${ns} deployment/${owner.name.slice(0, -hash.length - 1)}`;
  if (owner?.kind === 'StatefulSet' || owner?.kind === 'DaemonSet') return `kubectl rollout restart -n ${ns} ${owner.kind.toLowerCase()}/${owner.name}`;
  return `kubectl delete pod -n ${ns} ${pod.metadata?.name ?? ''} and create it again`;
}

const when = (d: Date | undefined) => (d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : 'an unknown time');

/** What the webhook gave one pod, and its token's audience: two links. */
function podLinks(input: ExplainInput, wi: WorkloadIdentity, pod: V1Pod): Link[] {
  const status = wi.status ?? {};
  const mechanism = status.mechanism ?? '';
  const name = input.pods.length > 1 ? ` (pod ${pod.metadata?.name ?? ''})` : '';
  const injection = `injection${name}`;
  const audienceLink = `token audience${name}`;
  const configMap = status.gcp?.credentialConfigMap;
  if (status.cloud === 'gcp' && configMap) {
    // Workload Identity Federation off GKE: the pod spec itself must mount what the docs show.
    const check = checkFederatedPod(pod, configMap, status.audience ?? '');
    const fix = `mount it as kubectl get wi -n ${input.namespace} ${wi.metadata.name} -o jsonpath='{.status.conditions[?(@.type=="ServiceAccountReady")].message}' says, then ${restartCommand(input, pod)}`;
    return [
      check.configuration.ok ? ok(injection, `nothing is injected; the pod mounts ${check.configuration.detail}`) : broken(injection, check.configuration.problem, fix),
      check.token.ok ? ok(audienceLink, check.token.detail) : broken(audienceLink, check.token.problem, fix),
    ];
  }
  if (status.cloud === 'gcp') {
    if (pod.spec?.hostNetwork) return [broken(injection, 'the pod uses the host network, where GKE\'s metadata server cannot tell pods apart: it gets the node\'s identity', 'run it without hostNetwork'), skipped(audienceLink, 'GKE: no token in the pod')];
    return [ok(injection, 'nothing to inject: GKE\'s metadata server serves the identity\'s tokens to the pod on each request'), skipped(audienceLink, 'GKE: no token in the pod')];
  }
  const token = TOKEN[mechanism as keyof typeof TOKEN] as (typeof TOKEN)[keyof typeof TOKEN] | undefined;
  const credentials: PodCredentials | undefined = mechanism === 'IRSA' || mechanism === 'PodIdentity' ? awsPodCredentials(mechanism) : status.cloud === 'azure' ? AZURE_POD_CREDENTIALS : undefined;
  if (!token || !credentials) return [skipped(injection, `mechanism ${mechanism || 'unknown (no status yet)'}`), skipped(audienceLink, 'nothing to check')];

  const stale = credentials.staleReason(pod, status);
  const restart = restartCommand(input, pod);
  const created = pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp) : undefined;
  let links: Link[];
  if (stale === undefined) {
    const shown = mechanism === 'IRSA' ? ['AWS_ROLE_ARN', token.env] : mechanism === 'PodIdentity' ? ['AWS_CONTAINER_CREDENTIALS_FULL_URI', token.env] : ['AZURE_CLIENT_ID', 'AZURE_TENANT_ID', token.env];
    links = [ok(injection, shown.map((v) => `${v}=${envOf(pod, v) ?? ''}`).join(' '))];
  } else if (status.cloud === 'azure' && pod.metadata?.labels?.[USE_LABEL] !== 'true') {
    links = [broken(injection, `the pod lacks the label ${USE_LABEL}: "true", so the Azure workload identity webhook skipped it`, `add the label to the pod template's labels (not the Deployment's own), then ${restart}`)];
  } else {
    links = [broken(injection, `the pod ${stale}: ${injectionWhy(input, wi, pod, created)}`, restart)];
  }
  const file = envOf(pod, token.env);
  if (file === undefined) return [...links, skipped(audienceLink, `no ${token.env}: nothing injected`)];
  const projected = projectedAudience(pod, file);
  if (projected.problem) return [...links, broken(audienceLink, `${token.env}=${file}, but ${projected.problem}`, 'let the webhook mount the token: remove any hand-written volume at that path')];
  return [
    ...links,
    projected.audience === token.audience
      ? ok(audienceLink, `${projected.audience} (${token.env}=${file})`)
      : broken(audienceLink, `${projected.audience}, but ${mechanism} needs ${token.audience}`, mechanism === 'IRSA' ? `remove the ${'eks.amazonaws.com/audience'} annotation from the ServiceAccount, then ${restart}` : `remove the hand-written token volume, then ${restart}`),
  ];
}

/** Why a pod created when it was lacks the current credentials: too early, no webhook, or an opt-out. */
function injectionWhy(input: ExplainInput, wi: WorkloadIdentity, pod: V1Pod, created: Date | undefined): string {
  const mechanism = wi.status?.mechanism;
  const key = mechanism === 'IRSA' ? SERVICE_ACCOUNT_ANNOTATION.awsRoleArn : mechanism === 'PodIdentity' ? undefined : SERVICE_ACCOUNT_ANNOTATION.azureClientId;
  const trustSince = findCondition(wi.status?.conditions, CONDITION.trustReady)?.lastTransitionTime;
  const since = key ? annotationSetAt(input.serviceAccount, key) : trustSince ? new Date(trustSince) : undefined;
  const what = key ? `the annotation ${key} was set at ${when(since)}` : `the Pod Identity association was in place at ${when(since)}`;
  // Timestamps have one-second resolution: a pod of the same second as the annotation came before it, or it would
  // have been injected like the pods after it.
  if (created && since && created <= since) return `it was created at ${when(created)}, before ${what}; webhooks inject only when a pod is created`;
  const webhook = wi.status?.cloud === 'azure' ? WEBHOOK.azure : WEBHOOK.aws;
  if (input.webhooks && !input.webhooks.includes(webhook)) return `no mutating webhook ${webhook} is registered in this cluster, so nothing injects credentials (on EKS and AKS it is part of the platform; elsewhere install it)`;
  if (mechanism !== undefined && mechanism !== 'WorkloadIdentity' && pod.metadata?.labels?.['eks.amazonaws.com/skip-pod-identity-webhook'] !== undefined) return 'the pod carries the label eks.amazonaws.com/skip-pod-identity-webhook';
  return `it was created at ${when(created)}; ${what}`;
}

function identityChain(input: ExplainInput, wi: WorkloadIdentity): Link[] {
  const status = wi.status ?? {};
  const conditions = status.conditions;
  const ns = input.namespace;
  const describe = `kubectl describe wi -n ${ns} ${wi.metadata.name}`;
  const links: Link[] = [];
  const { step, condition } = firstNotReady(wi);
  const ready = findCondition(conditions, CONDITION.ready);
  links.push(
    ready?.status === 'True'
      ? ok('WorkloadIdentity', `${ns}/${wi.metadata.name} is Ready (${status.cloud ?? '?'}, ${status.mechanism ?? '?'})`)
      : broken('WorkloadIdentity', condition ? `${ns}/${wi.metadata.name}: ${step}=${condition.status} ${condition.reason}: ${condition.message}` : `${ns}/${wi.metadata.name} has no status yet`, condition ? describe : 'is the Keyless operator running? kubectl get deploy -n keyless-system'),
  );
  links.push(fromCondition('cloud identity', findCondition(conditions, CONDITION.identityReady), status.identity ?? '', describe));
  const trust = `issuer ${status.issuer ?? '?'}, subject ${status.subject ?? '?'}${status.audience ? `, audience ${status.audience}` : ''}`;
  links.push(fromCondition('trust', findCondition(conditions, CONDITION.trustReady), trust, describe));
  links.push(fromCondition('permissions', findCondition(conditions, CONDITION.permissionsReady), findCondition(conditions, CONDITION.permissionsReady)?.message ?? '', describe));
  links.push(annotationLink(input, wi));
  for (const pod of input.pods) links.push(...podLinks(input, wi, pod));
  const verified = findCondition(conditions, CONDITION.credentialsVerified);
  if (!verified) links.push(skipped('CredentialsVerified', `not checked: the CloudAccount ${wi.spec.cloudAccountRef.name} does not set spec.verification.enabled`));
  else if (verified.status === 'True') links.push(ok('CredentialsVerified', `${verified.reason}: ${verified.message}`));
  else links.push({ state: verified.status === 'Unknown' ? 'WARN' : 'BROKEN', link: 'CredentialsVerified', detail: `${verified.reason}: ${verified.message}`, fix: describe });
  return links;
}

/** The ServiceAccount annotation the mechanism's webhook (or GKE's metadata server) reads. */
function annotationLink(input: ExplainInput, wi: WorkloadIdentity): Link {
  const status = wi.status ?? {};
  const want: [string, string | undefined] | undefined =
    status.mechanism === 'IRSA'
      ? [SERVICE_ACCOUNT_ANNOTATION.awsRoleArn, status.aws?.roleArn]
      : status.mechanism === 'ServiceAccount'
        ? [SERVICE_ACCOUNT_ANNOTATION.gcpServiceAccount, status.gcp?.serviceAccountEmail]
        : status.cloud === 'azure'
          ? [SERVICE_ACCOUNT_ANNOTATION.azureClientId, status.azure?.clientId]
          : undefined;
  if (status.gcp?.credentialConfigMap) return skipped('annotation', `Workload Identity Federation needs no ServiceAccount annotation: the pods mount ConfigMap ${status.gcp.credentialConfigMap}`);
  if (!want) return skipped('annotation', `mechanism ${status.mechanism ?? 'unknown'} needs no ServiceAccount annotation`);
  const [key, value] = want;
  const actual = input.serviceAccount?.metadata?.annotations?.[key];
  if (value !== undefined && actual === value) return ok('annotation', `${key}: ${actual}`);
  const sa = findCondition(status.conditions, CONDITION.serviceAccountReady);
  return broken('annotation', actual === undefined ? `${key} is not set on ServiceAccount ${input.namespace}/${input.serviceAccountName}` : `${key} is ${actual}, not ${value ?? 'the identity (not provisioned yet)'}`, sa?.status === 'False' ? sa.message : `kubectl describe wi -n ${input.namespace} ${wi.metadata.name}`);
}

/** Every chain from the workload's ServiceAccount: one per WorkloadIdentity naming it, or one that says there is none. */
export function explain(input: ExplainInput): Chain[] {
  const saLink: Link = input.serviceAccount
    ? ok('ServiceAccount', `${input.namespace}/${input.serviceAccountName}`)
    : broken('ServiceAccount', `${input.namespace}/${input.serviceAccountName} does not exist: the pods cannot start`, `kubectl create serviceaccount -n ${input.namespace} ${input.serviceAccountName}`);
  const mine = input.identities.filter((wi) => wi.spec.serviceAccountName === input.serviceAccountName).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  if (mine.length) return mine.map((wi) => ({ identity: wi, links: [saLink, ...identityChain(input, wi)] }));
  const annotations = input.serviceAccount?.metadata?.annotations ?? {};
  const handMade = Object.values(SERVICE_ACCOUNT_ANNOTATION)
    .filter((k) => k !== SERVICE_ACCOUNT_ANNOTATION.azureTenantId && annotations[k] !== undefined)
    .map((k) => `${k}: ${annotations[k] ?? ''}`);
  const links = [
    saLink,
    broken(
      'WorkloadIdentity',
      `no WorkloadIdentity in ${input.namespace} names ServiceAccount ${input.serviceAccountName}${handMade.length ? `; it carries an identity set by hand (${handMade.join(', ')})` : ''}`,
      handMade.length ? `kubectl keyless migrate -n ${input.namespace} writes the WorkloadIdentity that adopts it` : `create a WorkloadIdentity with spec.serviceAccountName: ${input.serviceAccountName}`,
    ),
  ];
  if (credentialPath(input.pods[0] ?? {}) !== undefined) links.push({ state: 'WARN', link: 'injection', detail: `the pod has ${credentialPath(input.pods[0] ?? {}) ?? ''} credentials that Keyless does not manage` });
  return [{ identity: undefined, links }];
}

export function renderExplain(input: ExplainInput, chains: Chain[]): string {
  const pods = input.pods.map((p) => p.metadata?.name ?? '').join(', ');
  const head = `${input.workload.kind}/${input.workload.name} in namespace ${input.namespace}: ServiceAccount ${input.serviceAccountName}, ${input.pods.length === 1 && input.workload.kind === 'pod' ? 'the pod' : `pods ${pods || '(none running)'}`}\n`;
  const body = chains.map((chain) => {
    const title = chain.identity ? `\nWorkloadIdentity ${input.namespace}/${chain.identity.metadata.name}\n` : '\n';
    const rows = chain.links.flatMap((l) => [[l.state, l.link, l.detail], ...(l.fix ? [['', '', `fix: ${l.fix}`]] : [])]);
    return title + table(['STATE', 'LINK', 'DETAIL'], rows);
  });
  const brokenCount = chains.flatMap((c) => c.links).filter((l) => l.state === 'BROKEN').length;
  return `${head}${body.join('')}\n${brokenCount ? `${brokenCount} broken link(s).` : 'Every link holds.'}\n`;
}
