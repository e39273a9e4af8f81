// Where a grant lands: a full resource name (https://cloud.google.com/iam/docs/full-resource-names) parsed into
// the IAM policy it edits. Only resource types with an IAM policy endpoint Keyless speaks are accepted; anything
// else is a spec problem reported before any cloud call.

/** One IAM policy Keyless reads and edits. */
export type PolicyTarget =
  | { kind: 'project'; project: string }
  | { kind: 'serviceAccount'; project: string; email: string }
  | { kind: 'bucket'; bucket: string }
  | { kind: 'topic'; project: string; topic: string }
  | { kind: 'secret'; project: string; secret: string };

const PROJECT = '[a-z0-9][a-z0-9-]{0,61}[a-z0-9]|[0-9]{1,20}';
const PATTERNS: { pattern: RegExp; target: (m: RegExpExecArray) => PolicyTarget }[] = [
  { pattern: new RegExp(`^//cloudresourcemanager\\.googleapis\\.com/projects/(${PROJECT})$`), target: (m) => ({ kind: 'project', project: m[1] ?? '' }) },
  // Bucket names: 3–63 characters per dot-separated part, up to 222 in all (Cloud Storage bucket naming).
  { pattern: /^\/\/storage\.googleapis\.com\/projects\/_\/buckets\/([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])$/, target: (m) => ({ kind: 'bucket', bucket: m[1] ?? '' }) },
  { pattern: new RegExp(`^//pubsub\\.googleapis\\.com/projects/(${PROJECT})/topics/([A-Za-z][A-Za-z0-9._~+%-]{2,254})$`), target: (m) => ({ kind: 'topic', project: m[1] ?? '', topic: m[2] ?? '' }) },
  { pattern: new RegExp(`^//secretmanager\\.googleapis\\.com/projects/(${PROJECT})/secrets/([A-Za-z0-9_-]{1,255})$`), target: (m) => ({ kind: 'secret', project: m[1] ?? '', secret: m[2] ?? '' }) },
];

export const SUPPORTED_RESOURCES = [
  '//cloudresourcemanager.googleapis.com/projects/PROJECT',
  '//storage.googleapis.com/projects/_/buckets/BUCKET',
  '//pubsub.googleapis.com/projects/PROJECT/topics/TOPIC',
  '//secretmanager.googleapis.com/projects/PROJECT/secrets/SECRET',
];

/** The policy a grant's `resource` names; the CloudAccount's project when absent; undefined when unsupported. */
export function policyTarget(resource: string | undefined, defaultProject: string): PolicyTarget | undefined {
  if (resource === undefined) return { kind: 'project', project: defaultProject };
  for (const { pattern, target } of PATTERNS) {
    const m = pattern.exec(resource);
    if (m) return target(m);
  }
  return undefined;
}

/** A stable key per policy, for grouping grants and remembering where we granted. */
export function targetKey(t: PolicyTarget): string {
  switch (t.kind) {
    case 'project':
      return `project/${t.project}`;
    case 'serviceAccount':
      return `serviceAccount/${t.email}`;
    case 'bucket':
      return `bucket/${t.bucket}`;
    case 'topic':
      return `topic/projects/${t.project}/topics/${t.topic}`;
    case 'secret':
      return `secret/projects/${t.project}/secrets/${t.secret}`;
  }
}

/** The full resource name, for messages a person can paste into gcloud or the console. */
export function describeTarget(t: PolicyTarget): string {
  switch (t.kind) {
    case 'project':
      return `project ${t.project}`;
    case 'serviceAccount':
      return `service account ${t.email}`;
    case 'bucket':
      return `bucket gs://${t.bucket}`;
    case 'topic':
      return `topic projects/${t.project}/topics/${t.topic}`;
    case 'secret':
      return `secret projects/${t.project}/secrets/${t.secret}`;
  }
}

/** The full resource name of a grant target, as the record stores it (inverse of policyTarget). */
export function fullResourceName(t: PolicyTarget): string {
  switch (t.kind) {
    case 'project':
      return `//cloudresourcemanager.googleapis.com/projects/${t.project}`;
    case 'serviceAccount':
      return `//iam.googleapis.com/projects/${t.project}/serviceAccounts/${t.email}`;
    case 'bucket':
      return `//storage.googleapis.com/projects/_/buckets/${t.bucket}`;
    case 'topic':
      return `//pubsub.googleapis.com/projects/${t.project}/topics/${t.topic}`;
    case 'secret':
      return `//secretmanager.googleapis.com/projects/${t.project}/secrets/${t.secret}`;
  }
}
