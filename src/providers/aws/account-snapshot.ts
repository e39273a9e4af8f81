// A per-CloudAccount snapshot of the IAM roles this cluster owns, so that a resync observes a role without reading
// IAM. Observing one role directly costs four reads (GetRole, ListRolePolicies, ListAttachedRolePolicies,
// GetRolePolicy); the whole account costs ⌈roles in the account ÷ 1,000⌉ GetAccountAuthorizationDetails pages
// (Filter=Role) plus ⌈roles under the role path ÷ 1,000⌉ ListRoles pages.
//
// What the snapshot holds. GetAccountAuthorizationDetails has no path filter: it pages through every role of the
// account, and only roles under the CloudAccount's role path that carry this cluster's `keyless.dev/cluster` tag are
// kept — and of those only what observe compares: the trust policy and our inline policy as JSON text, the names of
// the other inline policies, attached policy ARNs, tags, boundary, session length and description.
//
// What GetAccountAuthorizationDetails lacks. Its RoleDetail has no MaxSessionDuration and no Description (IAM API
// reference, RoleDetail). A GetRole for them on every Nth resync would leave a hand-raised session length unrepaired
// for N resyncs; instead ListRoles with the role path as PathPrefix supplies both for every role of the path (it
// returns everything but PermissionsBoundary, RoleLastUsed and Tags, which RoleDetail has). A role that is not in
// both lists (created between the two) is not in the snapshot. So every field observe compares is in the snapshot
// and drift in any of them is seen within the same bound.
//
// Freshness and the drift bound. Let R be the resync interval (KEYLESS_RESYNC_SECONDS): every identity is
// reconciled again at most 1.1 R after its last reconcile (the controller's ±10 % jitter), plus any wait in a busy
// queue. A reconcile uses a snapshot begun at most A = R ÷ 4 ago (snapshotMaxAgeMs), or the one being taken at that
// moment. A change made by hand at time e is in every snapshot begun after e (give or take IAM's own propagation),
// so the first reconcile at or after e + A sees it, and the one before may just have missed it: from a hand edit to
// its repair takes at most 1.1 R + A = 1.35 R (plus queue wait, plus the time one snapshot takes when that exceeds
// A), against 1.1 R when every reconcile reads the role directly — 13.5 instead of 11 minutes at the default
// R = 600 s. The cost: a snapshot is taken only when a reconcile finds none fresh, so at most R ÷ A = 4 per resync
// interval (fewer when reconciles bunch together), that is 4 × (⌈account roles ÷ 1,000⌉ + ⌈path roles ÷ 1,000⌉) ÷ N
// reads per identity per resync: 0.04 for 200 identities in an account of at most 1,000 roles, 0.008 for 10,000.
//
// Our own writes. A snapshot begun before a write of ours describes the role as it was, and judging the role from
// it would make the next reconcile "repair" our own change (a needless write and a false DriftRepaired event). Every
// IamPort call that changes a role goes through `iam`, which records when it finished (failed ones too: they may have
// taken effect); a snapshot is believed about a role only if it was begun more than SETTLE_MS after that. Any other
// role the snapshot cannot speak for — absent from it (created after it was taken, outside the path, another
// cluster's), not owned by this exact WorkloadIdentity, or while no snapshot can be taken (AccessDenied, throttling:
// retried after A) — is read directly, as before. A role deleted by hand after the snapshot is still in it: like any
// other hand edit it is seen within the bound; should a repair write reach it first, IAM's NoSuchEntity fails that
// reconcile (CloudRejected) and, the write being recorded, the next one reads the role directly and recreates it.
//
// Concurrency: many workers observe at once; one snapshot is taken at a time and every caller waits for that one.
import { MARKER } from '../../api/constants.ts';
import { monotonicNow } from '../../controller/timers.ts';
import { isCloudError } from '../cloud-error.ts';
import { isOwned } from '../ownership.ts';
import type { CreateRoleInput, IamPage, IamPageRequest, IamPort } from './iam-port.ts';
import { INLINE_POLICY_NAME, type DesiredRole, type ObservedRole } from './role.ts';

/** IAM's largest page for both list calls. */
const PAGE_SIZE = 1000;

/**
 * IAM is eventually consistent: a read soon after a write may still return the old state. A snapshot begun within
 * this long after a write of ours is not believed about that role.
 */
export const SETTLE_MS = 5_000;

/** The snapshot age that keeps a hand edit's repair within about one resync interval (1.35 R, above). */
export function snapshotMaxAgeMs(resyncMs: number): number {
  return resyncMs / 4;
}

interface Scope {
  path: string;
  cluster: string;
}

/** One role as observe needs it; documents as JSON text, a fraction of the parsed objects' size. */
interface Entry {
  name: string;
  arn: string;
  path: string;
  trustPolicy: string | undefined;
  maxSessionDuration: number;
  description: string | undefined;
  permissionsBoundaryArn: string | undefined;
  tags: Record<string, string>;
  inlinePolicyNames: string[];
  inlinePolicy: string | undefined;
  managedPolicyArns: string[];
}

interface Snapshot {
  scope: Scope;
  /** When its first read began: it describes no role as of any later moment. */
  takenAt: number;
  roles: Map<string, Entry>;
}

export interface AccountSnapshotOptions {
  maxAgeMs: number;
  /** A monotonic clock in milliseconds (tests pass a FakeClock's). */
  now?: () => number;
  settleMs?: number;
}

async function eachItem<T>(fetch: (request: IamPageRequest) => Promise<IamPage<T>>, visit: (item: T) => void): Promise<void> {
  let marker: string | undefined;
  do {
    const page = await fetch({ maxItems: PAGE_SIZE, ...(marker === undefined ? {} : { marker }) });
    page.items.forEach(visit);
    marker = page.marker;
  } while (marker !== undefined);
}

const sameScope = (a: Scope, b: Scope) => a.path === b.path && a.cluster === b.cluster;

export class AccountSnapshot {
  /** The port every caller must write through: it records each role written so no older snapshot judges it. */
  readonly iam: IamPort;
  readonly #reader: IamPort;
  readonly #maxAgeMs: number;
  readonly #settleMs: number;
  readonly #now: () => number;
  /** When a write of ours to a role (by lower-cased name) last finished. */
  readonly #writtenAt = new Map<string, number>();
  #current: Snapshot | undefined;
  #taking: { scope: Scope; snapshot: Promise<Snapshot | undefined> } | undefined;
  #failedAt: number | undefined;

  constructor(iam: IamPort, opts: AccountSnapshotOptions) {
    if (!(opts.maxAgeMs > 0)) throw new RangeError('snapshot maxAgeMs must be > 0');
    this.#reader = iam;
    this.#maxAgeMs = opts.maxAgeMs;
    this.#settleMs = opts.settleMs ?? SETTLE_MS;
    this.#now = opts.now ?? monotonicNow;
    this.iam = recordingWrites(iam, (roleName) => this.#writtenAt.set(roleName.toLowerCase(), this.#now()));
  }

  /** The role and its grants from a fresh snapshot, or undefined when the snapshot cannot speak for it. */
  async observe(desired: DesiredRole): Promise<ObservedRole | undefined> {
    const cluster = desired.marker[MARKER.cluster];
    if (cluster === undefined) return undefined;
    const snapshot = await this.#fresh({ path: desired.path, cluster });
    const key = desired.name.toLowerCase();
    const entry = snapshot?.roles.get(key);
    if (!snapshot || !entry || !isOwned(entry.tags, desired.marker)) return undefined;
    const written = this.#writtenAt.get(key);
    if (written !== undefined && snapshot.takenAt <= written + this.#settleMs) return undefined;
    return {
      role: {
        name: entry.name,
        arn: entry.arn,
        path: entry.path,
        trustPolicy: entry.trustPolicy === undefined ? undefined : JSON.parse(entry.trustPolicy),
        maxSessionDuration: entry.maxSessionDuration,
        ...(entry.description === undefined ? {} : { description: entry.description }),
        ...(entry.permissionsBoundaryArn === undefined ? {} : { permissionsBoundaryArn: entry.permissionsBoundaryArn }),
        tags: { ...entry.tags },
      },
      inlinePolicyNames: [...entry.inlinePolicyNames],
      inlinePolicy: entry.inlinePolicy === undefined ? undefined : JSON.parse(entry.inlinePolicy),
      managedPolicyArns: [...entry.managedPolicyArns],
    };
  }

  /** The current snapshot if fresh, else the one being taken, else a new one; undefined while none can be had. */
  async #fresh(scope: Scope): Promise<Snapshot | undefined> {
    const now = this.#now();
    const current = this.#current;
    if (current && sameScope(current.scope, scope) && now - current.takenAt < this.#maxAgeMs) return current;
    if (this.#taking) return sameScope(this.#taking.scope, scope) ? this.#taking.snapshot : undefined;
    if (this.#failedAt !== undefined && now - this.#failedAt < this.#maxAgeMs) return undefined;
    // A stale snapshot is never used again: let it go before the next one is built.
    this.#current = undefined;
    this.#taking = { scope, snapshot: this.#take(scope) };
    return this.#taking.snapshot;
  }

  async #take(scope: Scope): Promise<Snapshot | undefined> {
    const takenAt = this.#now();
    try {
      const details = new Map<string, Omit<Entry, 'maxSessionDuration' | 'description'>>();
      await eachItem((page) => this.#reader.getAccountAuthorizationDetails(page), (role) => {
        if (role.path !== scope.path || role.tags[MARKER.cluster] !== scope.cluster) return;
        const inline = role.inlinePolicies[INLINE_POLICY_NAME];
        details.set(role.name.toLowerCase(), {
          name: role.name,
          arn: role.arn,
          path: role.path,
          trustPolicy: role.trustPolicy === undefined ? undefined : JSON.stringify(role.trustPolicy),
          permissionsBoundaryArn: role.permissionsBoundaryArn,
          tags: role.tags,
          inlinePolicyNames: Object.keys(role.inlinePolicies),
          inlinePolicy: inline === undefined ? undefined : JSON.stringify(inline),
          managedPolicyArns: role.managedPolicyArns,
        });
      });
      const roles = new Map<string, Entry>();
      if (details.size) {
        await eachItem((page) => this.#reader.listRoles(scope.path, page), (listed) => {
          const key = listed.name.toLowerCase();
          const detail = details.get(key);
          if (detail && listed.path === scope.path) roles.set(key, { ...detail, maxSessionDuration: listed.maxSessionDuration, description: listed.description });
        });
      }
      // Writes this snapshot already shows no longer need remembering; later snapshots begin later still.
      for (const [role, at] of this.#writtenAt) if (at + this.#settleMs < takenAt) this.#writtenAt.delete(role);
      this.#current = { scope, takenAt, roles };
      this.#failedAt = undefined;
      return this.#current;
    } catch (err) {
      // Observing falls back to direct reads until the next attempt. A cloud error is counted by its operation and
      // code (keyless_cloud_api_calls_total); anything else is a bug and fails the reconciles waiting for it.
      this.#failedAt = this.#now();
      if (!isCloudError(err)) throw err;
      return undefined;
    } finally {
      this.#taking = undefined;
    }
  }
}

/** `iam` with every role-changing call reporting the role it changed once the call has ended, whatever the outcome. */
function recordingWrites(iam: IamPort, wrote: (roleName: string) => void): IamPort {
  const write = async <T>(roleName: string, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } finally {
      wrote(roleName);
    }
  };
  return {
    getRole: (name) => iam.getRole(name),
    listRolePolicies: (roleName) => iam.listRolePolicies(roleName),
    getRolePolicy: (roleName, policyName) => iam.getRolePolicy(roleName, policyName),
    listAttachedRolePolicies: (roleName) => iam.listAttachedRolePolicies(roleName),
    listInstanceProfilesForRole: (roleName) => iam.listInstanceProfilesForRole(roleName),
    getAccountAuthorizationDetails: (page) => iam.getAccountAuthorizationDetails(page),
    listRoles: (pathPrefix, page) => iam.listRoles(pathPrefix, page),
    listOpenIDConnectProviders: () => iam.listOpenIDConnectProviders(),
    // OIDC providers are not roles: nothing for the snapshot to distrust.
    getOpenIDConnectProvider: (arn) => iam.getOpenIDConnectProvider(arn),
    createOpenIDConnectProvider: (input) => iam.createOpenIDConnectProvider(input),
    tagOpenIDConnectProvider: (arn, tags) => iam.tagOpenIDConnectProvider(arn, tags),
    deleteOpenIDConnectProvider: (arn) => iam.deleteOpenIDConnectProvider(arn),
    createRole: (input: CreateRoleInput) => write(input.name, () => iam.createRole(input)),
    updateAssumeRolePolicy: (roleName, policy) => write(roleName, () => iam.updateAssumeRolePolicy(roleName, policy)),
    updateRole: (roleName, update) => write(roleName, () => iam.updateRole(roleName, update)),
    putRolePermissionsBoundary: (roleName, arn) => write(roleName, () => iam.putRolePermissionsBoundary(roleName, arn)),
    deleteRolePermissionsBoundary: (roleName) => write(roleName, () => iam.deleteRolePermissionsBoundary(roleName)),
    tagRole: (roleName, tags) => write(roleName, () => iam.tagRole(roleName, tags)),
    putRolePolicy: (roleName, policyName, policy) => write(roleName, () => iam.putRolePolicy(roleName, policyName, policy)),
    deleteRolePolicy: (roleName, policyName) => write(roleName, () => iam.deleteRolePolicy(roleName, policyName)),
    attachRolePolicy: (roleName, policyArn) => write(roleName, () => iam.attachRolePolicy(roleName, policyArn)),
    detachRolePolicy: (roleName, policyArn) => write(roleName, () => iam.detachRolePolicy(roleName, policyArn)),
    removeRoleFromInstanceProfile: (profile, roleName) => write(roleName, () => iam.removeRoleFromInstanceProfile(profile, roleName)),
    deleteRole: (roleName) => write(roleName, () => iam.deleteRole(roleName)),
  };
}
