// The pure half of every IAM policy edit (DESIGN §2: additive edits of shared policies). Given a policy as read,
// one member that belongs to exactly one WorkloadIdentity, and the grants that member should hold on this
// resource, compute the policy to write back. Only that member (and the `deleted:` ghosts of our own deleted
// service account) is ever added or removed; every other member and binding is carried over untouched.

export interface IamCondition {
  title?: string;
  description?: string;
  expression: string;
  /** Returned by some services; not part of what a condition means. */
  location?: string;
}

export interface IamBinding {
  role: string;
  members: string[];
  condition?: IamCondition | null;
}

/** The fields Keyless reads and writes; anything else a service returns (auditConfigs, kind...) is kept as is. */
export interface IamPolicy {
  version?: number;
  etag?: string;
  bindings?: IamBinding[];
  [extra: string]: unknown;
}

export interface Grant {
  role: string;
  condition?: IamCondition | undefined;
}

export interface PolicyEdit {
  policy: IamPolicy;
  /** Whether `policy` differs from the input: no write is needed when false. */
  changed: boolean;
  added: Grant[];
  removed: Grant[];
  /** Other members dropped: `deleted:` ghosts of our own service account, intruders on an exclusive role. */
  purged: string[];
}

/** Conditions compare on what IAM evaluates and shows: title, description and expression (`location` is noise). */
function conditionKey(c: IamCondition | null | undefined): string {
  if (!c?.expression) return '';
  return JSON.stringify([c.title ?? '', c.description ?? '', c.expression]);
}

export function grantKey(g: { role: string; condition?: IamCondition | null | undefined }): string {
  return `${g.role}\u0000${conditionKey(g.condition)}`;
}

function cleanCondition(c: IamCondition): IamCondition {
  return { ...(c.title ? { title: c.title } : {}), ...(c.description ? { description: c.description } : {}), expression: c.expression };
}

/** The grants `member` holds in `policy`. */
export function grantsOf(policy: IamPolicy, member: string): Grant[] {
  return (policy.bindings ?? [])
    .filter((b) => b.members.includes(member))
    .map((b) => ({ role: b.role, ...(b.condition?.expression ? { condition: cleanCondition(b.condition) } : {}) }));
}

export interface MemberEdit {
  /** The member whose grants this edit sets. */
  member: string;
  /** Exactly the grants `member` must hold here afterwards; every other grant of `member` is removed. */
  grants: Grant[];
  /** Other members of ours to drop wherever they appear (the `deleted:` ghosts of our own service account). */
  purge?: (member: string) => boolean;
  /**
   * Roles on which `member` must be the only member (a service account's own workloadIdentityUser binding: a
   * second Kubernetes ServiceAccount there would widen who can impersonate it).
   */
  exclusiveRoles?: string[];
}

/**
 * Sets `edit.member`'s grants in `policy` to exactly `edit.grants`. A binding we emptied disappears; a binding we
 * did not touch keeps its exact shape and position. Version 3 whenever any binding carries a condition (IAM
 * Policy.version: conditional bindings require it, and writing a lower version would drop conditions).
 */
export function setMemberGrants(policy: IamPolicy, edit: MemberEdit): PolicyEdit {
  const wanted = new Map(edit.grants.map((g) => [grantKey(g), g]));
  const exclusive = new Set(edit.exclusiveRoles ?? []);
  const purge = edit.purge ?? (() => false);
  const added: Grant[] = [];
  const removed: Grant[] = [];
  const purged: string[] = [];
  const present = new Set<string>();
  const bindings: IamBinding[] = [];
  let changed = false;

  for (const binding of policy.bindings ?? []) {
    const key = grantKey(binding);
    let members = binding.members;
    const dropped = members.filter((m) => purge(m) || (exclusive.has(binding.role) && m !== edit.member));
    if (dropped.length) {
      purged.push(...dropped);
      members = members.filter((m) => !dropped.includes(m));
    }
    if (members.includes(edit.member)) {
      if (wanted.has(key) && !present.has(key)) {
        present.add(key);
      } else {
        // Not in the spec (or a duplicate binding of a wanted grant): ours to remove.
        members = members.filter((m) => m !== edit.member);
        if (!wanted.has(key)) removed.push({ role: binding.role, ...(binding.condition?.expression ? { condition: cleanCondition(binding.condition) } : {}) });
      }
    }
    if (members === binding.members) {
      bindings.push(binding);
      continue;
    }
    changed = true;
    if (members.length) bindings.push({ ...binding, members });
  }

  for (const [key, grant] of wanted) {
    if (present.has(key)) continue;
    const existing = bindings.findIndex((b) => grantKey(b) === key);
    const target = existing >= 0 ? bindings[existing] : undefined;
    if (target) {
      bindings[existing] = { ...target, members: [...target.members, edit.member] };
    } else {
      bindings.push({ role: grant.role, members: [edit.member], ...(grant.condition ? { condition: cleanCondition(grant.condition) } : {}) });
    }
    added.push(grant);
    changed = true;
  }

  const conditional = bindings.some((b) => b.condition?.expression);
  const version = conditional ? 3 : (policy.version ?? 1);
  if (version !== (policy.version ?? 1)) changed = true;
  return { policy: { ...policy, version, bindings }, changed, added, removed, purged };
}

export function describeGrant(g: Grant): string {
  return g.condition ? `${g.role} (if ${g.condition.title ?? g.condition.expression})` : g.role;
}
