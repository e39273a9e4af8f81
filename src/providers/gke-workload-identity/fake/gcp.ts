// An in-memory GcpPort for unit tests: IAM's observable rules without a network — etags that change on every
// write and reject stale writers, version 3 for conditions, `deleted:` members left behind by a deleted service
// account, the per-project service account quota, and hooks for a concurrent writer or a not-yet-propagated
// account. End-to-end tests use the HTTP emulator in test/emulators/gcp instead.
import { CloudError } from '../../cloud-error.ts';
import type { GcpPort, GoogleServiceAccount } from '../gcp-port.ts';
import type { IamPolicy } from '../policy.ts';
import { targetKey, type PolicyTarget } from '../resources.ts';

export class FakeGcp implements GcpPort {
  readonly serviceAccounts = new Map<string, GoogleServiceAccount>();
  readonly policies = new Map<string, IamPolicy>();
  /** Resources that exist (policies are readable); projects are added by the constructor. */
  readonly resources = new Set<string>();
  /** Every mutating call, in order, as `Operation:target`. */
  readonly writes: string[] = [];
  /** Every call, reads included. */
  readonly calls: string[] = [];
  quota = 100;
  /** Accounts IAM does not yet accept as members (eventual consistency after create). */
  readonly unpropagated = new Set<string>();
  /** Runs just before a setIamPolicy is checked: a place for a concurrent writer to sneak in. */
  beforeSet: ((key: string) => void) | undefined;
  #etag = 0;
  #uid = 100000;

  constructor(...projects: string[]) {
    for (const p of projects) this.resources.add(targetKey({ kind: 'project', project: p }));
  }

  addResource(target: PolicyTarget, policy: IamPolicy = {}): void {
    const key = targetKey(target);
    this.resources.add(key);
    this.policies.set(key, { ...policy, etag: this.#nextEtag() });
  }

  /** A write by someone else: bumps the etag like any write. */
  foreignWrite(target: PolicyTarget, change: (p: IamPolicy) => IamPolicy): void {
    const key = targetKey(target);
    this.policies.set(key, { ...change(structuredClone(this.policies.get(key) ?? {})), etag: this.#nextEtag() });
  }

  policy(target: PolicyTarget): IamPolicy {
    return structuredClone(this.policies.get(targetKey(target)) ?? {});
  }

  #nextEtag(): string {
    this.#etag += 1;
    const b = Buffer.alloc(8);
    b.writeUInt32BE(this.#etag, 4);
    return b.toString('base64');
  }

  #exists(key: string, operation: string): void {
    if (!this.resources.has(key)) throw new CloudError('notFound', 'NOT_FOUND', operation, `${operation}: Resource ${key} not found.`);
  }

  async getServiceAccount(_project: string, email: string): Promise<GoogleServiceAccount | undefined> {
    this.calls.push(`GetServiceAccount:${email}`);
    const sa = this.serviceAccounts.get(email);
    return sa ? { ...sa } : undefined;
  }

  async listServiceAccounts(project: string): Promise<GoogleServiceAccount[]> {
    this.calls.push(`ListServiceAccounts:${project}`);
    return [...this.serviceAccounts.values()].filter((sa) => sa.email.endsWith(`@${project}.iam.gserviceaccount.com`)).map((sa) => ({ ...sa }));
  }

  async createServiceAccount(project: string, accountId: string, fields: { displayName: string; description: string }): Promise<GoogleServiceAccount> {
    this.calls.push(`CreateServiceAccount:${accountId}`);
    const email = `${accountId}@${project}.iam.gserviceaccount.com`;
    if (this.serviceAccounts.has(email)) throw new CloudError('alreadyExists', 'ALREADY_EXISTS', 'CreateServiceAccount', `Service account ${accountId} already exists within project projects/${project}.`);
    const inProject = [...this.serviceAccounts.keys()].filter((e) => e.endsWith(`@${project}.iam.gserviceaccount.com`)).length;
    if (inProject >= this.quota) throw new CloudError('terminal', 'RESOURCE_EXHAUSTED', 'CreateServiceAccount', 'CreateServiceAccount: Maximum number of service accounts on project reached.');
    this.writes.push(`CreateServiceAccount:${email}`);
    this.#uid += 1;
    const sa = { email, uniqueId: String(this.#uid), disabled: false, ...fields };
    this.serviceAccounts.set(email, sa);
    this.addResource({ kind: 'serviceAccount', project, email });
    return { ...sa };
  }

  async patchServiceAccount(_project: string, email: string, fields: { displayName: string; description?: string }): Promise<void> {
    this.calls.push(`PatchServiceAccount:${email}`);
    const sa = this.serviceAccounts.get(email);
    if (!sa) throw new CloudError('notFound', 'NOT_FOUND', 'PatchServiceAccount', `Service account ${email} not found`);
    this.writes.push(`PatchServiceAccount:${email}`);
    sa.displayName = fields.displayName;
    if (fields.description !== undefined) sa.description = fields.description;
  }

  async deleteServiceAccount(project: string, email: string): Promise<void> {
    this.calls.push(`DeleteServiceAccount:${email}`);
    const sa = this.serviceAccounts.get(email);
    if (!sa) return;
    this.writes.push(`DeleteServiceAccount:${email}`);
    this.serviceAccounts.delete(email);
    this.resources.delete(targetKey({ kind: 'serviceAccount', project, email }));
    this.policies.delete(targetKey({ kind: 'serviceAccount', project, email }));
    // IAM keeps the account's bindings elsewhere, renamed to its deleted form.
    for (const [key, policy] of this.policies) {
      if (!policy.bindings?.some((b) => b.members.includes(`serviceAccount:${email}`))) continue;
      const bindings = policy.bindings.map((b) => ({ ...b, members: b.members.map((m) => (m === `serviceAccount:${email}` ? `deleted:serviceAccount:${email}?uid=${sa.uniqueId}` : m)) }));
      this.policies.set(key, { ...policy, bindings, etag: this.#nextEtag() });
    }
  }

  async getIamPolicy(target: PolicyTarget): Promise<IamPolicy> {
    const key = targetKey(target);
    this.calls.push(`GetIamPolicy:${key}`);
    this.#exists(key, 'GetIamPolicy');
    const stored = this.policies.get(key);
    if (!stored) {
      const fresh = { version: 1, etag: this.#nextEtag() };
      this.policies.set(key, fresh);
      return structuredClone(fresh);
    }
    return structuredClone(stored);
  }

  async setIamPolicy(target: PolicyTarget, policy: IamPolicy): Promise<IamPolicy> {
    const key = targetKey(target);
    this.calls.push(`SetIamPolicy:${key}`);
    this.#exists(key, 'SetIamPolicy');
    this.beforeSet?.(key);
    const stored = this.policies.get(key);
    if (policy.etag !== undefined && stored?.etag !== undefined && policy.etag !== stored.etag) {
      throw new CloudError('conflict', 'ABORTED', 'SetIamPolicy', 'SetIamPolicy: There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.');
    }
    const bindings = policy.bindings ?? [];
    if (bindings.some((b) => b.condition?.expression) && policy.version !== 3) {
      throw new CloudError('terminal', 'INVALID_ARGUMENT', 'SetIamPolicy', 'SetIamPolicy: Policy version must be 3 for policies with conditional bindings.');
    }
    for (const m of bindings.flatMap((b) => b.members)) {
      const email = m.startsWith('serviceAccount:') ? m.slice('serviceAccount:'.length) : undefined;
      if (email?.endsWith('.iam.gserviceaccount.com') && (!this.serviceAccounts.has(email) || this.unpropagated.has(email))) {
        throw new CloudError('retryable', 'NOT_PROPAGATED', 'SetIamPolicy', `SetIamPolicy: Service account ${email} does not exist.`);
      }
    }
    this.writes.push(`SetIamPolicy:${key}`);
    const written = { ...structuredClone(policy), etag: this.#nextEtag() };
    this.policies.set(key, written);
    return structuredClone(written);
  }
}
