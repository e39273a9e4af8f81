// What the kubelet and a pod's SDK do between them, for tests of the clouds' token exchanges: mint a ServiceAccount
// token exactly as a projected volume would (TokenRequest with the volume's audience and expiration, bound to the
// pod), put it in a file, and run the SDK's own credential chain in a child process whose environment is the pod's
// (credential-probe.ts). Also a forger, for tokens the issuer never signed.
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { ProbeResult } from './credential-probe.ts';
import { repoPath } from './cluster.ts';

export type { ProbeResult };

export interface TokenSpec {
  audience: string;
  expirationSeconds: number;
  /** Bind the token to this pod, as the kubelet does for a projected volume. */
  pod?: V1Pod;
}

/** TokenRequest for `namespace/serviceAccount`: the JWT a projected serviceAccountToken volume would hold. */
export async function mintToken(kc: KubeConfig, namespace: string, serviceAccount: string, spec: TokenSpec): Promise<string> {
  const pod = spec.pod?.metadata;
  const answer = await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    namespace,
    name: serviceAccount,
    body: {
      spec: {
        audiences: [spec.audience],
        expirationSeconds: spec.expirationSeconds,
        ...(pod?.name && pod.uid ? { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid } } : {}),
      },
    },
  });
  const token = answer.status?.token;
  if (!token) throw new Error(`TokenRequest for ${namespace}/${serviceAccount} returned no token`);
  return token;
}

/** The same claims, signed by a key the issuer never published (and a key id it does not have). */
export function forgeToken(token: string): string {
  const [head = '', body = ''] = token.split('.');
  const header = { ...(JSON.parse(Buffer.from(head, 'base64url').toString()) as object), kid: `forged-${randomUUID()}` };
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${body}`;
  return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}

/** A scratch directory for token files and credential configurations; the returned function removes it. */
export function scratchDir(): [string, () => void] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keyless-exchange-'));
  return [dir, () => rmSync(dir, { recursive: true, force: true })];
}

let files = 0;
/** Writes `content` to a new file in `dir`; the path, for a *_TOKEN_FILE variable or a credential configuration. */
export function writeFile(dir: string, content: string): string {
  const file = path.join(dir, `file-${++files}`);
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

/**
 * The credential environment of `pod`'s first container as its SDK sees it: the variables the admission webhooks
 * injected, with each *_TOKEN_FILE pointing at a local file holding the token the kubelet would project there
 * (audience and expiration from the pod's projected serviceAccountToken volume, bound to the pod).
 */
export async function podEnvironment(kc: KubeConfig, pod: V1Pod, dir: string): Promise<Record<string, string>> {
  const container = pod.spec?.containers[0];
  const env: Record<string, string> = Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value ?? '']));
  const projected = (pod.spec?.volumes ?? []).filter((v) => v.projected?.sources?.some((s) => s.serviceAccountToken) && !v.name.startsWith('kube-api-access-'));
  for (const [name, value] of Object.entries(env)) {
    if (!name.endsWith('_TOKEN_FILE')) continue;
    const mount = container?.volumeMounts?.find((m) => value.startsWith(`${m.mountPath}/`));
    const volume = projected.find((v) => v.name === mount?.name) ?? (projected.length === 1 ? projected[0] : undefined);
    const source = volume?.projected?.sources?.find((s) => s.serviceAccountToken)?.serviceAccountToken;
    if (!source?.audience) throw new Error(`pod ${pod.metadata?.name ?? ''}: no projected token volume behind ${name}=${value}`);
    const token = await mintToken(kc, pod.metadata?.namespace ?? '', pod.spec?.serviceAccountName ?? 'default', { audience: source.audience, expirationSeconds: source.expirationSeconds ?? 3600, pod });
    env[name] = writeFile(dir, token);
  }
  return env;
}

/**
 * What the kubelet mounts for `pod`'s first container, for a credential chain that reads files by their in-pod paths
 * (GOOGLE_APPLICATION_CREDENTIALS, and the token file a credential configuration names): every projected volume it
 * mounts (serviceAccountToken sources minted as the kubelet would, bound to the pod; configMap sources read from the
 * API) and every configMap volume, written under a scratch root. The container's paths are rebased onto that root, as
 * a chroot would present them: in the environment, and in the files the ConfigMaps hold. Added to the environment
 * podEnvironment gives (the webhooks' variables and *_TOKEN_FILE tokens).
 */
export async function mountedEnvironment(kc: KubeConfig, pod: V1Pod, dir: string): Promise<Record<string, string>> {
  const env = await podEnvironment(kc, pod, dir);
  const container = pod.spec?.containers[0];
  const namespace = pod.metadata?.namespace ?? '';
  const root = path.join(dir, `rootfs-${++files}`);
  const core = kc.makeApiClient(CoreV1Api);
  const rebase = (text: string, mounts: string[]) => mounts.reduce((t, m) => t.split(`${m}/`).join(`${root}${m}/`), text);
  const mounts = (container?.volumeMounts ?? []).filter((m) => {
    const volume = pod.spec?.volumes?.find((v) => v.name === m.name);
    return volume !== undefined && !volume.name.startsWith('kube-api-access-') && (volume.configMap !== undefined || volume.projected !== undefined);
  });
  const mountPaths = mounts.map((m) => m.mountPath);
  for (const mount of mounts) {
    const volume = pod.spec?.volumes?.find((v) => v.name === mount.name);
    const target = path.join(root, mount.mountPath);
    mkdirSync(target, { recursive: true });
    const sources = volume?.projected?.sources ?? (volume?.configMap ? [{ configMap: volume.configMap }] : []);
    for (const source of sources) {
      const token = source.serviceAccountToken;
      if (token) {
        const minted = await mintToken(kc, namespace, pod.spec?.serviceAccountName ?? 'default', { audience: token.audience ?? '', expirationSeconds: token.expirationSeconds ?? 3600, pod });
        writeFileSync(path.join(target, token.path), minted, { mode: 0o600 });
      }
      const configMap = source.configMap;
      if (configMap?.name) {
        const { data = {} } = await core.readNamespacedConfigMap({ namespace, name: configMap.name });
        const items = configMap.items ?? Object.keys(data).map((key) => ({ key, path: key }));
        for (const item of items) writeFileSync(path.join(target, item.path), rebase(data[item.key] ?? '', mountPaths), { mode: 0o600 });
      }
    }
  }
  for (const [name, value] of Object.entries(env)) env[name] = rebase(value, mountPaths);
  return env;
}

/**
 * Runs credential-probe.ts `chain` with `env` and nothing of this process's environment but PATH: a HOME with no
 * ~/.aws, no ambient credentials, IMDS off (outside EC2 it would only time out), the AWS SDK's Node version notice off.
 */
export async function probe(chain: 'aws' | 'aws-container' | 'azure' | 'gcp', env: Record<string, string>, home: string): Promise<ProbeResult> {
  const { stdout } = await promisify(execFile)(process.execPath, [repoPath('test/support/credential-probe.ts'), chain], {
    env: { PATH: process.env['PATH'] ?? '', HOME: home, AWS_EC2_METADATA_DISABLED: 'true', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
    timeout: 60_000,
  });
  return JSON.parse(stdout) as ProbeResult;
}
