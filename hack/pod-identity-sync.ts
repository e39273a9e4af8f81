// Keeps the EKS pod identity webhook's container-credentials file (--watch-container-credentials-config) in step with
// the Pod Identity associations of one cluster in the in-project EKS emulator (test/emulators/eks-pod-identity), the
// way the webhook EKS manages knows the associations of its cluster: a pod created once an association exists gets
// AWS_CONTAINER_CREDENTIALS_FULL_URI and the eks-pod-identity-token volume; after it is deleted, a new pod does not.
// hack/peers.sh runs this in the background.
//   node hack/pod-identity-sync.ts --emulator URL --cluster NAME --file PATH
//
// The emulator has no watch, so this asks it four times a second (its admin route, which stays out of its request
// log) and rewrites the file, whole and by rename, only when the set of ServiceAccounts changed. The webhook
// reloads the file on the rename (fsnotify). While the emulator cannot be reached the file keeps its last content.
import { renameSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { emulator: { type: 'string' }, cluster: { type: 'string' }, file: { type: 'string' } } });
const { emulator, cluster, file } = values;
if (!emulator || !cluster || !file) throw new Error('usage: node hack/pod-identity-sync.ts --emulator URL --cluster NAME --file PATH');

interface Association {
  namespace: string;
  serviceAccount: string;
}

/** The file's content for these associations: pkg/containercredentials' IdentityConfigObject, in a stable order. */
function identitiesFile(associations: Association[]): string {
  const keys = [...new Set(associations.map((a) => JSON.stringify({ namespace: a.namespace, serviceAccount: a.serviceAccount })))].sort();
  return `${JSON.stringify({ identities: keys.map((k) => JSON.parse(k) as Association) })}\n`;
}

const url = new URL('/__emulator/associations', emulator);
url.searchParams.set('cluster', cluster);
let written = '';
let failing = false;
const stopping = new AbortController();
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => stopping.abort());

while (!stopping.signal.aborted) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const content = identitiesFile((await res.json()) as Association[]);
    if (content !== written) {
      writeFileSync(`${file}.tmp`, content);
      renameSync(`${file}.tmp`, file);
      written = content;
      console.log(`pod-identity-sync: ${(JSON.parse(content) as { identities: unknown[] }).identities.length} ServiceAccounts of cluster ${cluster}`);
    }
    failing = false;
  } catch (err) {
    if (!failing) console.error(`pod-identity-sync: cannot read the associations at ${url.href}: ${err instanceof Error ? err.message : String(err)}`);
    failing = true;
  }
  await sleep(250, undefined, { signal: stopping.signal }).catch(() => undefined);
}
