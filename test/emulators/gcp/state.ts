// The state behind the GCP emulator: projects, service accounts, resources with IAM policies, and the faults a
// test switched on. Modelled on what IAM documents and what bites in production (cloud-apis.md §3.4): etags
// that change on every write and reject a stale writer, version 3 for conditional bindings, eventual
// consistency after a service account is created, the per-project service account quota, and the `deleted:`
// members a deleted service account leaves in every policy that named it.
import { createHash, randomInt } from 'node:crypto';

export interface Expr {
  title?: string;
  description?: string;
  expression: string;
  location?: string;
}

export interface Binding {
  role: string;
  members: string[];
  condition?: Expr;
}

export interface StoredPolicy {
  version: number;
  etag: string;
  bindings: Binding[];
}

export interface ServiceAccount {
  name: string;
  projectId: string;
  uniqueId: string;
  email: string;
  displayName: string;
  description: string;
  oauth2ClientId: string;
  disabled: boolean;
  /** Epoch ms from which IAM reads and member checks see the account. */
  visibleAt: number;
}

export interface Project {
  projectId: string;
  projectNumber: string;
}

export interface Faults {
  /** How long a new service account stays invisible (404 on reads, 400 "does not exist" as a member). */
  propagationDelayMs: number;
  /** Chance that a setIamPolicy meets a concurrent writer (a foreign binding lands first; the caller gets 409). */
  conflictProbability: number;
  /** Deterministic variant: every Nth setIamPolicy meets a concurrent writer (0 = off). */
  conflictEvery: number;
  /** Service accounts per project (IAM's default quota is 100). */
  serviceAccountQuota: number;
  /** One-shot failures: the next `count` calls of `operation` answer `status`. */
  failures: { operation: string; status: number; count: number }[];
  /**
   * A cloud that stops answering: the next `count` calls of `operation` (or '*', every call) are held for
   * `delayMs` before they are served. Setting `delays` again (clearing them) serves held calls at once.
   */
  delays: { operation: string; delayMs: number; count: number }[];
}

export interface LoggedCall {
  seq: number;
  operation: string;
  method: string;
  path: string;
  status: number;
  /** The bearer token: tells the operator's calls from a test's own reads. */
  caller: string;
}

export interface PolicyWrite {
  /** The policy's key, as in GcpState.policies (project/P, bucket/B, ...). */
  key: string;
  bindings: Binding[];
}

export class GoogleError extends Error {
  readonly code: number;
  readonly status: string;
  constructor(code: number, status: string, message: string) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

const MEMBER = /^(user|group|domain|serviceAccount|deleted|principal|principalSet|projectOwner|projectEditor|projectViewer):|^principal(Set)?:\/\/|^allUsers$|^allAuthenticatedUsers$/;

export class GcpState {
  readonly projects = new Map<string, Project>();
  readonly serviceAccounts = new Map<string, ServiceAccount>();
  /** Policies by key: project/P, serviceAccount/EMAIL, bucket/B, topic/projects/P/topics/T, secret/projects/P/secrets/S. */
  readonly policies = new Map<string, StoredPolicy>();
  readonly log: LoggedCall[] = [];
  /** Every version of every policy, in the order written: what a reader polling the policy could miss. */
  readonly policyWrites: PolicyWrite[] = [];
  faults: Faults = { propagationDelayMs: 0, conflictProbability: 0, conflictEvery: 0, serviceAccountQuota: 100, failures: [], delays: [] };
  #etag = 0;
  #foreign = 0;
  #writes = 0;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  nextEtag(): string {
    this.#etag += 1;
    // Canonical base64 of 8 bytes, like real etags (BwYAAAAAAAA=): other encodings get mangled by gax clients.
    const b = Buffer.alloc(8);
    b.writeUInt8(7, 0);
    b.writeUInt32BE(this.#etag, 4);
    return b.toString('base64');
  }

  addProject(projectId: string, projectNumber: string): void {
    this.projects.set(projectId, { projectId, projectNumber });
    if (!this.policies.has(`project/${projectId}`)) this.policies.set(`project/${projectId}`, { version: 1, etag: this.nextEtag(), bindings: [] });
  }

  addResource(key: string): void {
    if (!this.policies.has(key)) this.policies.set(key, { version: 1, etag: this.nextEtag(), bindings: [] });
  }

  /** The projects buckets were added under; a bucket added without one is listed in every project. */
  readonly bucketProjects = new Map<string, string>();

  /** The names after `prefix` of the resources whose policy key starts with it (bucket/, topic/projects/P/topics/...). */
  resourcesUnder(prefix: string): string[] {
    return [...this.policies.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length)).sort();
  }

  project(id: string): Project {
    const p = this.projects.get(id) ?? [...this.projects.values()].find((x) => x.projectNumber === id);
    if (!p) throw new GoogleError(404, 'NOT_FOUND', `Project ${id} not found or permission denied.`);
    return p;
  }

  /** Takes a one-shot failure for `operation`, if a test queued one. */
  injectedFailure(operation: string): number | undefined {
    const f = this.faults.failures.find((x) => x.count > 0 && (x.operation === operation || x.operation === '*'));
    if (!f) return undefined;
    f.count -= 1;
    return f.status;
  }

  /** Takes one held answer for `operation`, if a test queued a delay: how long to hold it. */
  injectedDelay(operation: string): number | undefined {
    const d = this.faults.delays.find((x) => x.count > 0 && (x.operation === operation || x.operation === '*'));
    if (!d) return undefined;
    d.count -= 1;
    return d.delayMs;
  }

  visible(sa: ServiceAccount): boolean {
    return this.#now() >= sa.visibleAt;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Service accounts

  findServiceAccount(project: string, id: string): ServiceAccount | undefined {
    const sa = this.serviceAccounts.get(id) ?? [...this.serviceAccounts.values()].find((s) => s.uniqueId === id);
    if (!sa || (project !== '-' && sa.projectId !== this.project(project).projectId)) return undefined;
    return this.visible(sa) ? sa : undefined;
  }

  getServiceAccount(project: string, id: string): ServiceAccount {
    const sa = this.findServiceAccount(project, id);
    if (!sa) {
      // IAM answers 403 for a missing account named through the `-` wildcard (ServiceAccount.name docs).
      if (project === '-') throw new GoogleError(403, 'PERMISSION_DENIED', `Permission 'iam.serviceAccounts.get' denied on resource (or it may not exist).`);
      throw new GoogleError(404, 'NOT_FOUND', `Unknown service account`);
    }
    return sa;
  }

  createServiceAccount(projectId: string, body: { accountId?: string; serviceAccount?: { displayName?: string; description?: string } }): ServiceAccount {
    const project = this.project(projectId);
    const accountId = body.accountId ?? '';
    if (!/^[a-z]([-a-z0-9]*[a-z0-9])$/.test(accountId) || accountId.length < 6 || accountId.length > 30) {
      throw new GoogleError(400, 'INVALID_ARGUMENT', `Invalid account ID: ${accountId}. It must be 6-30 characters of lowercase letters, digits and hyphens, starting with a letter.`);
    }
    const displayName = body.serviceAccount?.displayName ?? '';
    const description = body.serviceAccount?.description ?? '';
    if (Buffer.byteLength(displayName) > 100) throw new GoogleError(400, 'INVALID_ARGUMENT', 'displayName must be at most 100 bytes.');
    if (Buffer.byteLength(description) > 256) throw new GoogleError(400, 'INVALID_ARGUMENT', 'description must be at most 256 bytes.');
    const email = `${accountId}@${project.projectId}.iam.gserviceaccount.com`;
    if (this.serviceAccounts.has(email)) {
      throw new GoogleError(409, 'ALREADY_EXISTS', `Service account ${accountId} already exists within project projects/${project.projectId}.`);
    }
    const inProject = [...this.serviceAccounts.values()].filter((s) => s.projectId === project.projectId).length;
    if (inProject >= this.faults.serviceAccountQuota) {
      throw new GoogleError(429, 'RESOURCE_EXHAUSTED', 'Maximum number of service accounts on project reached.');
    }
    const uniqueId = `1${String(randomInt(10 ** 9)).padStart(9, '0')}${String(this.serviceAccounts.size).padStart(11, '0')}`;
    const sa: ServiceAccount = {
      name: `projects/${project.projectId}/serviceAccounts/${email}`,
      projectId: project.projectId,
      uniqueId,
      email,
      displayName,
      description,
      oauth2ClientId: uniqueId,
      disabled: false,
      visibleAt: this.#now() + this.faults.propagationDelayMs,
    };
    this.serviceAccounts.set(email, sa);
    this.policies.set(`serviceAccount/${email}`, { version: 1, etag: this.nextEtag(), bindings: [] });
    return sa;
  }

  patchServiceAccount(project: string, id: string, body: { serviceAccount?: { displayName?: string; description?: string }; updateMask?: string }): ServiceAccount {
    const sa = this.getServiceAccount(project, id);
    const fields = (body.updateMask ?? '').split(',').map((f) => f.trim());
    if (fields.includes('displayName')) sa.displayName = body.serviceAccount?.displayName ?? '';
    if (fields.includes('description')) sa.description = body.serviceAccount?.description ?? '';
    return sa;
  }

  deleteServiceAccount(project: string, id: string): void {
    const sa = this.getServiceAccount(project, id);
    this.serviceAccounts.delete(sa.email);
    this.policies.delete(`serviceAccount/${sa.email}`);
    const member = `serviceAccount:${sa.email}`;
    for (const [key, policy] of this.policies) {
      if (!policy.bindings.some((b) => b.members.includes(member))) continue;
      const bindings = policy.bindings.map((b) => ({ ...b, members: b.members.map((m) => (m === member ? `deleted:${member}?uid=${sa.uniqueId}` : m)) }));
      this.policies.set(key, { ...policy, bindings, etag: this.nextEtag() });
      this.policyWrites.push({ key, bindings: structuredClone(bindings) });
    }
  }

  listServiceAccounts(projectId: string): ServiceAccount[] {
    const project = this.project(projectId);
    return [...this.serviceAccounts.values()].filter((s) => s.projectId === project.projectId && this.visible(s)).sort((a, b) => a.email.localeCompare(b.email));
  }

  // ------------------------------------------------------------------------------------------------------------
  // IAM policies

  policy(key: string, what: string): StoredPolicy {
    const p = this.policies.get(key);
    if (!p) throw new GoogleError(404, 'NOT_FOUND', `${what} not found.`);
    return p;
  }

  /**
   * The policy as a caller asking for `requestedVersion` sees it: below 3, conditional bindings come back with
   * a `_withcond_` role suffix and no condition, as IAM does for callers that do not understand conditions.
   */
  readPolicy(key: string, what: string, requestedVersion: number): StoredPolicy {
    const p = this.policy(key, what);
    if (requestedVersion >= 3 || !p.bindings.some((b) => b.condition)) return structuredClone(p);
    return {
      version: 1,
      etag: p.etag,
      bindings: p.bindings.map((b) => (b.condition ? { role: `${b.role}_withcond_${createHash('sha256').update(JSON.stringify(b.condition)).digest('hex').slice(0, 20)}`, members: [...b.members] } : structuredClone(b))),
    };
  }

  /** setIamPolicy: etag check, validation, and a fresh etag. `stale` is the error a stale etag gets. */
  writePolicy(key: string, what: string, body: { version?: number; etag?: string; bindings?: Binding[] } | undefined, stale: () => GoogleError): StoredPolicy {
    const current = this.policy(key, what);
    if (!body || typeof body !== 'object') throw new GoogleError(400, 'INVALID_ARGUMENT', 'Request contains an invalid argument: policy is required.');
    this.#writes += 1;
    const every = this.faults.conflictEvery;
    if ((every > 0 && this.#writes % every === 0) || (this.faults.conflictProbability > 0 && Math.random() < this.faults.conflictProbability)) {
      // Someone else's read-modify-write lands between the caller's read and write.
      this.#foreign += 1;
      const member = `user:concurrent-${this.#foreign}@example.com`;
      current.bindings = [...current.bindings, { role: 'roles/browser', members: [member] }];
      current.etag = this.nextEtag();
    }
    if (body.etag !== undefined && body.etag !== current.etag) throw stale();
    const version = body.version ?? 1;
    const bindings: Binding[] = [];
    for (const b of body.bindings ?? []) {
      if (typeof b.role !== 'string' || !/^(roles|projects\/[^/]+\/roles|organizations\/[^/]+\/roles)\/[A-Za-z0-9_.]+$/.test(b.role)) {
        throw new GoogleError(400, 'INVALID_ARGUMENT', `Role ${String(b.role)} is not supported for this resource.`);
      }
      const members = [...new Set(b.members ?? [])];
      for (const m of members) {
        if (!MEMBER.test(m)) throw new GoogleError(400, 'INVALID_ARGUMENT', `Invalid member: ${m}.`);
        const email = m.startsWith('serviceAccount:') ? m.slice('serviceAccount:'.length) : '';
        const project = /^[^@]+@([a-z0-9-]+)\.iam\.gserviceaccount\.com$/.exec(email)?.[1];
        if (project && this.projects.has(project)) {
          const sa = this.serviceAccounts.get(email);
          if (!sa || !this.visible(sa)) throw new GoogleError(400, 'INVALID_ARGUMENT', `Service account ${email} does not exist.`);
        }
      }
      const condition = b.condition?.expression ? { ...b.condition } : undefined;
      if (condition && version < 3) {
        throw new GoogleError(400, 'INVALID_ARGUMENT', 'Policy version 3 is required for policies with conditional role bindings.');
      }
      if (condition && (!condition.title || condition.title.length > 100)) throw new GoogleError(400, 'INVALID_ARGUMENT', 'A condition needs a title of 1 to 100 characters.');
      if (members.length) bindings.push({ role: b.role, members, ...(condition ? { condition } : {}) });
    }
    const written: StoredPolicy = { version: bindings.some((b) => b.condition) ? 3 : Math.min(version, 3) || 1, etag: this.nextEtag(), bindings };
    this.policies.set(key, written);
    this.policyWrites.push({ key, bindings: structuredClone(bindings) });
    return structuredClone(written);
  }
}
