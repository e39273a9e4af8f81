// What a pod of a federated GCP identity must carry, judged from its spec (kubectl keyless explain): nothing injects it,
// so the pod spec itself must name the credential configuration in GOOGLE_APPLICATION_CREDENTIALS, mount the ConfigMap
// Keyless writes so that the file is there, and mount a projected ServiceAccount token with the provider's audience
// where the configuration's credential_source.file points. Pure.
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import { POD_CREDENTIALS, TOKEN_FILE } from './federation.ts';

export type MountCheck = { ok: true; detail: string } | { ok: false; problem: string };

export interface FederatedPodCheck {
  /** The credential configuration: the variable and the ConfigMap behind its file. */
  configuration: MountCheck;
  /** The projected token the configuration reads, and its audience. */
  token: MountCheck;
}

/** The volume mounted at the directory holding `file`, and the file's path inside it. */
function mounted(pod: V1Pod, container: V1Container, file: string): { volume: V1Volume; relative: string } | undefined {
  const mount = (container.volumeMounts ?? [])
    .filter((m) => file.startsWith(`${m.mountPath.replace(/\/+$/, '')}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  const volume = mount && pod.spec?.volumes?.find((v) => v.name === mount.name);
  return mount && volume ? { volume, relative: file.slice(mount.mountPath.replace(/\/+$/, '').length + 1) } : undefined;
}

/** The ConfigMap a volume serves `relative` from, with the key it reads. */
function configMapFile(volume: V1Volume, relative: string): { name: string; key: string } | undefined {
  const sources = volume.projected?.sources?.map((s) => s.configMap).filter((c) => c !== undefined) ?? (volume.configMap ? [volume.configMap] : []);
  for (const source of sources) {
    const item = source.items?.find((i) => i.path === relative);
    if (item) return { name: source.name ?? '', key: item.key };
    if (!source.items && !relative.includes('/')) return { name: source.name ?? '', key: relative };
  }
  return undefined;
}

export function checkFederatedPod(pod: V1Pod, configMap: string, audience: string): FederatedPodCheck {
  const containers = pod.spec?.containers ?? [];
  const container = containers.find((c) => c.env?.some((e) => e.name === 'GOOGLE_APPLICATION_CREDENTIALS')) ?? containers[0];
  const file = container?.env?.find((e) => e.name === 'GOOGLE_APPLICATION_CREDENTIALS')?.value;
  let configuration: MountCheck;
  if (!container || !file) {
    configuration = { ok: false, problem: 'no container sets GOOGLE_APPLICATION_CREDENTIALS, so Google client libraries do not find the credential configuration' };
  } else {
    const at = mounted(pod, container, file);
    const source = at && configMapFile(at.volume, at.relative);
    configuration = !source
      ? { ok: false, problem: `GOOGLE_APPLICATION_CREDENTIALS=${file}, but no ConfigMap volume is mounted there` }
      : source.name !== configMap || source.key !== POD_CREDENTIALS.configurationKey
        ? { ok: false, problem: `GOOGLE_APPLICATION_CREDENTIALS=${file} is key ${source.key} of ConfigMap ${source.name}, not ${POD_CREDENTIALS.configurationKey} of ${configMap}` }
        : { ok: true, detail: `GOOGLE_APPLICATION_CREDENTIALS=${file} (ConfigMap ${configMap})` };
  }
  const at = container && mounted(pod, container, TOKEN_FILE);
  const token = at?.volume.projected?.sources?.map((s) => s.serviceAccountToken).find((t) => t?.path === at.relative);
  return {
    configuration,
    token: !token
      ? { ok: false, problem: `no projected ServiceAccount token is mounted at ${TOKEN_FILE}, where the credential configuration reads it` }
      : token.audience !== audience
        ? { ok: false, problem: `the token at ${TOKEN_FILE} has audience ${token.audience ?? '(the API server\'s)'}, not ${audience}` }
        : { ok: true, detail: `${audience} (${TOKEN_FILE})` },
  };
}
