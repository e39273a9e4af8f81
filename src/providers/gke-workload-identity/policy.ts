// The pure half of every IAM policy edit (DESIGN §2: additive edits of shared policies). Given a policy as read,
// the members one WorkloadIdentity grants to and the grants each should hold on this resource, compute the policy
// to write back. Only those members' grants that Keyless may remove are removed (all of them for our own Google
// service account; only the recorded ones for a shared principal), plus the `deleted:` ghosts of our own deleted
// service account; every other member and binding is carried over untouched.

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

/** One grant of one member, as an edit reports it. */
export interface MemberGrant {
  member: string;
  grant: Grant;
}

export interface PolicyEdit {
  policy: IamPolicy;
  /** Whether `policy` differs from the input: no write is needed when false. */
  changed: boolean;
  added: MemberGrant[];
  removed: MemberGrant[];
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

function grantOf(binding: IamBinding): Grant {
  return { role: binding.role, ...(binding.condition?.expression ? { condition: cleanCondition(binding.condition) } : {}) };
}

/** The grants `member` holds in `policy`. */
export function grantsOf(policy: IamPolicy, member: string): Grant[] {
  return (policy.bindings ?? []).filter((b) => b.members.includes(member)).map(grantOf);
}

/** Whether `member` holds exactly this grant (role and condition) in `policy`. */
export function holds(policy: IamPolicy | undefined, member: string, grant: Grant): boolean {
  const key = grantKey(grant);
  return (policy?.bindings ?? []).some((b) => b.members.includes(member) && grantKey(b) === key);
}

export interface MemberEdit {
  /** The member whose grants this edit sets. */
  member: string;
  /** The grants `member` must hold here afterwards. */
  grants: Grant[];
  /**
   * Which of `member`'s other grants this edit may remove: all of them for a member that is ours alone (our own
   * Google service account, whose every grant is part of the identity), or only those we recorded granting, for a
   * member others can grant to as well (the Kubernetes ServiceAccount's principal://, shared by every cluster in
   * the pool). A grant outside this set survives, even when the spec no longer names it.
   */
  removable: 'all' | Grant[];
  /**
   * Roles on which `member` must be the only member (a service account's own workloadIdentityUser binding: a
   * second Kubernetes ServiceAccount there would widen who can impersonate it).
   */
  exclusiveRoles?: string[];
}

interface MemberState {
  edit: MemberEdit;
  wanted: Map<string, Grant>;
  removable: (key: string) => boolean;
  present: Set<string>;
}

/**
 * Sets each edited member's grants in `policy`: wanted grants are added where missing, and the member's other
 * grants are removed where the edit may remove them. Every other member and binding is carried over untouched; a
 * binding we emptied disappears; a binding we did not touch keeps its exact shape and position. `purge` names other
 * members of ours to drop wherever they appear (the `deleted:` ghosts of our own service account). Version 3
 * whenever any binding carries a condition (IAM Policy.version: conditional bindings require it, and writing a lower
 * version would drop conditions).
 */
export function editMembers(policy: IamPolicy, edits: MemberEdit[], purge: (member: string) => boolean = () => false): PolicyEdit {
  const states = new Map<string, MemberState>();
  for (const edit of edits) {
    const removable = edit.removable === 'all' ? undefined : new Set(edit.removable.map(grantKey));
    states.set(edit.member, {
      edit,
      wanted: new Map(edit.grants.map((g) => [grantKey(g), g])),
      removable: (key) => removable === undefined || removable.has(key),
      present: new Set(),
    });
  }
  const exclusive = new Map<string, string>();
  for (const edit of edits) for (const role of edit.exclusiveRoles ?? []) exclusive.set(role, edit.member);
  const added: MemberGrant[] = [];
  const removed: MemberGrant[] = [];
  const purged: string[] = [];
  const bindings: IamBinding[] = [];
  let changed = false;

  for (const binding of policy.bindings ?? []) {
    const key = grantKey(binding);
    const owner = exclusive.get(binding.role);
    let members = binding.members.filter((m) => {
      if (purge(m) || (owner !== undefined && m !== owner)) {
        purged.push(m);
        return false;
      }
      return true;
    });
    members = members.filter((m) => {
      const state = states.get(m);
      if (!state) return true;
      if (state.wanted.has(key) && !state.present.has(key)) {
        state.present.add(key);
        return true;
      }
      // Not wanted (or a duplicate binding of a wanted grant): ours to remove only where the edit may remove it.
      if (!state.removable(key)) return true;
      if (!state.wanted.has(key)) removed.push({ member: m, grant: grantOf(binding) });
      return false;
    });
    if (members.length === binding.members.length) {
      bindings.push(binding);
      continue;
    }
    changed = true;
    if (members.length) bindings.push({ ...binding, members });
  }

  for (const state of states.values()) {
    for (const [key, grant] of state.wanted) {
      if (state.present.has(key)) continue;
      const existing = bindings.findIndex((b) => grantKey(b) === key);
      const target = existing >= 0 ? bindings[existing] : undefined;
      if (target) {
        bindings[existing] = { ...target, members: [...target.members, state.edit.member] };
      } else {
        bindings.push({ role: grant.role, members: [state.edit.member], ...(grant.condition ? { condition: cleanCondition(grant.condition) } : {}) });
      }
      added.push({ member: state.edit.member, grant });
      changed = true;
    }
  }

  const conditional = bindings.some((b) => b.condition?.expression);
  const version = conditional ? 3 : (policy.version ?? 1);
  if (version !== (policy.version ?? 1)) changed = true;
  return { policy: { ...policy, version, bindings }, changed, added, removed, purged };
}

export function describeGrant(g: Grant): string {
  return g.condition ? `${g.role} (if ${g.condition.title ?? g.condition.expression})` : g.role;
}
