// A hand-made IRSA role (eks.amazonaws.com/role-arn) as a WorkloadIdentity that adopts it: read with the operator's
// own IAM port (reads only), then judged purely. Adoption replaces the role's trust with Keyless's, for exactly one
// ServiceAccount, and its policies with exactly the spec's; so the spec carries every inline statement and managed
// policy the role has today, and whatever adoption would take away from someone (another subject, a wildcard,
// another principal, a permissions boundary) keeps the role out of the migration.
import { AUDIENCE, SERVICE_ACCOUNT_ANNOTATION } from '../../api/constants.ts';
import type { AwsPolicyStatement, CloudAccount } from '../../api/types.ts';
import { serviceAccountSubject } from '../../domain/naming.ts';
import { globMatches } from '../../domain/patterns.ts';
import { trustsSubject } from '../../providers/aws-irsa/trust.ts';
import { issuerHostPath, parseRoleArn, partitionOf } from '../../providers/aws/arn.ts';
import { INLINE_POLICY_MAX } from '../../providers/aws/desired-role.ts';
import type { IamPort, IamRole } from '../../providers/aws/iam-port.ts';
import { policySize, renderInlinePolicy, type IamStatement } from '../../providers/aws/policy-document.ts';
import type { HandMade } from './candidates.ts';
import { alreadyOwned, durationOf, type CloudPlan } from './plan.ts';
import { describeTaggedOwner, unmarked } from '../../providers/ownership.ts';

/** The IAM reads migrate makes, and no write: a narrowing of the operator's IamPort. */
export type AwsReader = Pick<IamPort, 'getRole' | 'listRolePolicies' | 'getRolePolicy' | 'listAttachedRolePolicies'>;

export interface AwsRoleFacts {
  role: IamRole;
  inline: { name: string; document: unknown }[];
  managed: string[];
}

/** The role and everything it grants, or undefined when it does not exist. */
export async function readRole(iam: AwsReader, name: string): Promise<AwsRoleFacts | undefined> {
  const role = await iam.getRole(name);
  if (!role) return undefined;
  const [names, managed] = await Promise.all([iam.listRolePolicies(name), iam.listAttachedRolePolicies(name)]);
  const inline = await Promise.all(names.map(async (policy) => ({ name: policy, document: await iam.getRolePolicy(name, policy) })));
  return { role, inline, managed };
}

/** Whether `account` is where the role lives: same account and partition. */
export function awsAccountMatches(account: CloudAccount, arn: string): boolean {
  const parsed = parseRoleArn(arn);
  const aws = account.spec.aws;
  return parsed !== undefined && aws !== undefined && aws.accountId === parsed.accountId && partitionOf(aws.region) === parsed.partition;
}

const listOf = (value: unknown): string[] => (Array.isArray(value) ? value : value === undefined ? [] : [value]).map((v) => (typeof v === 'string' ? v : JSON.stringify(v)));

function statementsOf(doc: unknown): IamStatement[] {
  const raw = (doc as { Statement?: unknown } | undefined)?.Statement;
  return (Array.isArray(raw) ? raw : raw ? [raw] : []) as IamStatement[];
}

function principalsOf(s: IamStatement): string {
  if (s.Principal === '*') return 'everyone (Principal "*")';
  return Object.entries(s.Principal ?? {})
    .map(([kind, v]) => `${kind} ${listOf(v).join(', ')}`)
    .join('; ');
}

/** The trust's verdict: blockers when adoption, which keeps only this subject, would shut someone out. */
function judgeTrust(source: HandMade, role: IamRole, account: CloudAccount): { blockers: string[]; notes: string[] } {
  const blockers: string[] = [];
  const notes: string[] = [];
  const providerArn = account.status?.oidcProviderArn;
  const issuer = account.status?.issuer;
  if (!providerArn || !issuer) return { blockers: [`CloudAccount ${account.metadata.name} knows no IAM OIDC provider for this cluster's issuer yet (status.oidcProviderArn): see its Ready condition`], notes };
  const subject = serviceAccountSubject(source.namespace, source.serviceAccount);
  const key = `${issuerHostPath(issuer)}:sub`;
  let proven = false;
  statementsOf(role.trustPolicy).forEach((s, i) => {
    const label = `trust statement ${s.Sid ?? i + 1}`;
    if (s.Effect === 'Deny') {
      notes.push(`${label} denies ${listOf(s.Action).join(', ')} to ${principalsOf(s)}; Keyless's trust allows only ${subject}, so the Deny goes`);
      return;
    }
    if (trustsSubject({ Statement: [s] }, providerArn, issuer, subject)) {
      proven = true;
      const others = listOf(s.Condition?.['StringEquals']?.[key]).filter((v) => v !== subject);
      if (others.length) blockers.push(`${label} also trusts ${others.join(', ')}: Keyless trusts exactly one ServiceAccount, so adoption would shut them out; give each ServiceAccount its own role first`);
      const aud = listOf(s.Condition?.['StringEquals']?.[`${issuerHostPath(issuer)}:aud`]);
      if (aud.length && !aud.includes(AUDIENCE.irsa)) blockers.push(`${label} requires audience ${aud.join(', ')}; Keyless pins ${AUDIENCE.irsa}`);
      const extra = Object.entries(s.Condition ?? {}).flatMap(([op, block]) => Object.keys(block).filter((k) => !(op === 'StringEquals' && (k === key || k === `${issuerHostPath(issuer)}:aud`))).map((k) => `${op} ${k}`));
      if (extra.length) notes.push(`${label}: the conditions ${extra.join(', ')} are not part of Keyless's trust and go`);
      return;
    }
    const federated = typeof s.Principal === 'object' ? listOf(s.Principal['Federated']) : [];
    const patterns = typeof s.Principal === 'object' && federated.includes(providerArn) ? Object.entries(s.Condition ?? {}).filter(([op]) => op.startsWith('StringLike')).flatMap(([, block]) => listOf(block[key])) : [];
    if (patterns.some((p) => globMatches(p, subject))) {
      proven = true;
      blockers.push(`${label} is a wildcard trust: it lets every ServiceAccount matching ${patterns.join(', ')} assume the role; Keyless trusts exactly one ServiceAccount, so adoption would shut the others out`);
      return;
    }
    blockers.push(`${label} also lets ${principalsOf(s)} ${listOf(s.Action).join(', ')}: a trust broader than one ServiceAccount, which adoption would remove`);
  });
  if (!proven) blockers.push(`the role's trust does not let ${subject} assume it through ${providerArn} (sts:AssumeRoleWithWebIdentity with StringEquals on ${key}): it is not this ServiceAccount's role for this cluster`);
  return { blockers, notes };
}

/** One inline statement as a spec statement, or why it cannot be one. */
function specStatement(s: IamStatement, where: string): AwsPolicyStatement | string {
  for (const field of ['NotAction', 'NotResource', 'Principal', 'NotPrincipal'] as const) {
    if ((s as unknown as Record<string, unknown>)[field] !== undefined) return `${where} uses ${field}, which spec.aws.policy cannot express`;
  }
  const actions = listOf(s.Action);
  const resources = listOf(s.Resource);
  if (!actions.length || !resources.length) return `${where} has no ${actions.length ? 'Resource' : 'Action'}`;
  const conditions = s.Condition
    ? Object.fromEntries(Object.entries(s.Condition).map(([op, block]) => [op, Object.fromEntries(Object.entries(block).map(([k, v]) => [k, listOf(v)]))]))
    : undefined;
  return { ...(s.Sid && /^[A-Za-z0-9]+$/.test(s.Sid) ? { sid: s.Sid } : {}), effect: s.Effect, actions, resources, ...(conditions ? { conditions } : {}) };
}

export function planAws(source: HandMade, account: CloudAccount, facts: AwsRoleFacts): CloudPlan {
  const { role } = facts;
  const aws = account.spec.aws;
  const trust = judgeTrust(source, role, account);
  const blockers = [...trust.blockers];
  const notes = [...trust.notes];
  if (!unmarked(role.tags)) blockers.push(alreadyOwned('role', describeTaggedOwner(role.tags)));
  const audience = source.annotations[`eks.amazonaws.com/audience`];
  if (audience !== undefined && audience !== AUDIENCE.irsa) blockers.push(`the ServiceAccount sets eks.amazonaws.com/audience: ${audience}; Keyless pins ${AUDIENCE.irsa}`);

  const statements: AwsPolicyStatement[] = [];
  for (const { name, document } of facts.inline) {
    statementsOf(document).forEach((s, i) => {
      const converted = specStatement(s, `inline policy ${name}, statement ${s.Sid ?? i + 1},`);
      if (typeof converted === 'string') blockers.push(converted);
      else statements.push(converted);
    });
  }
  // Sids must be unique in the one inline policy Keyless writes; statements merged from several policies may clash.
  const seen = new Set<string>();
  for (const s of statements) {
    if (s.sid === undefined) continue;
    if (seen.has(s.sid)) {
      notes.push(`statement id ${s.sid} appears in more than one inline policy: the repeats lose their id`);
      delete s.sid;
    } else {
      seen.add(s.sid);
    }
  }
  const rendered = renderInlinePolicy(statements);
  if (rendered && policySize(rendered) > INLINE_POLICY_MAX) {
    blockers.push(`the inline policies add up to ${policySize(rendered)} characters; Keyless writes them as one inline policy, and IAM allows ${INLINE_POLICY_MAX}: move statements into a managed policy first`);
  }
  if (facts.inline.length > 1) notes.push(`inline policies ${facts.inline.map((p) => p.name).join(', ')} become one inline policy, keyless`);
  else if (facts.inline.length === 1 && facts.inline[0]?.name !== 'keyless') notes.push(`inline policy ${facts.inline[0]?.name ?? ''} is replaced by an equal one named keyless`);

  const boundary = aws?.permissionsBoundaryArn || undefined;
  if (role.permissionsBoundaryArn !== boundary) {
    if (role.permissionsBoundaryArn && !boundary) blockers.push(`the role has the permissions boundary ${role.permissionsBoundaryArn}, and CloudAccount ${account.metadata.name} sets none: Keyless would remove it, and the role could do more than today`);
    else if (role.permissionsBoundaryArn) blockers.push(`the role has the permissions boundary ${role.permissionsBoundaryArn}; CloudAccount ${account.metadata.name} would replace it with ${boundary ?? ''}`);
    else notes.push(`Keyless adds CloudAccount ${account.metadata.name}'s permissions boundary ${boundary ?? ''}: the role keeps only what the boundary also allows`);
  }
  const rolePath = aws?.rolePath ?? '/keyless/';
  if (role.path !== rolePath) notes.push(`the role's path ${role.path} is not the CloudAccount's ${rolePath}: the operator's IAM policy must cover it (docs/guardrails.md#adopting-an-identity-made-by-hand)`);
  if (role.maxSessionDuration < 3600 || role.maxSessionDuration > 43200) blockers.push(`the role's MaxSessionDuration ${role.maxSessionDuration}s is outside the 1h-12h Keyless allows`);

  return {
    adopt: role.arn,
    spec: {
      aws: {
        mechanism: 'IRSA',
        ...(statements.length ? { policy: statements } : {}),
        ...(facts.managed.length ? { managedPolicyArns: [...facts.managed].sort() } : {}),
        ...(role.maxSessionDuration !== 3600 ? { maxSessionDuration: durationOf(role.maxSessionDuration) } : {}),
      },
    },
    blockers,
    notes,
    takeOverAnnotations: source.annotations[SERVICE_ACCOUNT_ANNOTATION.awsRoleArn] !== role.arn,
  };
}
