// The listing migrate needs in a Google Cloud project — its service accounts, buckets, topics and secrets, to find
// the grants a hand-made Google service account holds — over the same REST clients, auth and call wrapper as the
// operator's GcpPort (src/providers/gke-workload-identity/gcp-client.ts). Lists only; nothing here writes.
import { iam, type iam_v1 } from '@googleapis/iam';
import { secretmanager } from '@googleapis/secretmanager';
import { storage } from '@googleapis/storage';
import type { AuthClient, GoogleAuth } from 'google-auth-library';
import type { RootUrls } from '../../providers/gke-workload-identity/gcp-client.ts';
import type { CloudCall } from '../../providers/instrument.ts';
import type { GcpInventory } from './gcp.ts';

/** The clients type `auth` against their own google-auth-library copy; any AuthClient or GoogleAuth works at runtime. */
type ClientAuth = iam_v1.Options['auth'];
const perCall = (signal: AbortSignal) => ({ retry: false, signal }) as const;

/** Every page of a Google list: `fetch` returns one page's items and the next token. */
async function pages<T>(fetch: (pageToken: string | undefined) => Promise<{ items: T[]; next: string | undefined }>): Promise<T[]> {
  const all: T[] = [];
  let token: string | undefined;
  do {
    const page = await fetch(token);
    all.push(...page.items);
    token = page.next || undefined;
  } while (token);
  return all;
}

export function createGcpInventory(auth: AuthClient | GoogleAuth, call: CloudCall, rootUrls: RootUrls): GcpInventory {
  const clientAuth = auth as unknown as ClientAuth;
  const accounts = iam({ version: 'v1', auth: clientAuth, rootUrl: rootUrls.iam }).projects.serviceAccounts;
  const gcs = storage({ version: 'v1', auth: clientAuth, rootUrl: rootUrls.storage });
  const sm = secretmanager({ version: 'v1', auth: clientAuth, rootUrl: rootUrls.secretmanager });
  const last = (name: string | null | undefined) => (name ?? '').split('/').pop() ?? '';
  return {
    listServiceAccounts: (project) =>
      pages(async (pageToken) => {
        const res = await call('ListServiceAccounts', (signal) => accounts.list({ name: `projects/${project}`, pageSize: 100, ...(pageToken ? { pageToken } : {}) }, perCall(signal)));
        return { items: (res.data.accounts ?? []).map((a) => a.email ?? '').filter(Boolean), next: res.data.nextPageToken ?? undefined };
      }),
    listBuckets: (project) =>
      pages(async (pageToken) => {
        const res = await call('buckets.list', (signal) => gcs.buckets.list({ project, ...(pageToken ? { pageToken } : {}) }, perCall(signal)));
        return { items: (res.data.items ?? []).map((b) => b.name ?? '').filter(Boolean), next: res.data.nextPageToken ?? undefined };
      }),
    listSecrets: (project) =>
      pages(async (pageToken) => {
        const res = await call('secrets.list', (signal) => sm.projects.secrets.list({ parent: `projects/${project}`, ...(pageToken ? { pageToken } : {}) }, perCall(signal)));
        return { items: (res.data.secrets ?? []).map((s) => last(s.name)).filter(Boolean), next: res.data.nextPageToken ?? undefined };
      }),
    // No @googleapis/pubsub package exists: Pub/Sub's REST list through the authenticated client, as the port does.
    listTopics: (project) =>
      pages(async (pageToken) => {
        const url = new URL(`v1/projects/${project}/topics`, rootUrls.pubsub).href;
        const res = await call('topics.list', (signal) => auth.request<{ topics?: { name?: string }[]; nextPageToken?: string }>({ url, method: 'GET', params: pageToken ? { pageToken } : {}, retry: false, signal }));
        return { items: (res.data.topics ?? []).map((t) => last(t.name)).filter(Boolean), next: res.data.nextPageToken };
      }),
  };
}
