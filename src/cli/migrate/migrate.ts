// `kubectl keyless migrate`: from the ServiceAccounts annotated by hand to the WorkloadIdentities that adopt their
// identities. Reads the cluster and the clouds, writes neither: the API server only dry-runs each manifest (schema and
// CEL), and the CloudAccount's guardrails are evaluated here, so what is printed is what the operator will accept.
import type { CloudAccount, WorkloadIdentity } from '../../api/types.ts';
import { API_VERSION, WORKLOAD_IDENTITY_ANNOTATION } from '../../api/constants.ts';
import { describeIneffective, ineffectiveGrants } from '../../domain/grants/index.ts';
import { describeViolation, evaluateGuardrails, type ActionCatalogue } from '../../domain/guardrails/index.ts';
import { KubeApiError } from '../../kube/api.ts';
import type { ClusterReader } from '../cluster.ts';
import { awsAccountMatches, planAws, readRole } from './aws.ts';
import { azureAccountMatches, findIdentity, planAzure, readIdentity } from './azure.ts';
import { handMadeIdentities, type HandMade } from './candidates.ts';
import type { CloudReaders } from './clouds.ts';
import { gcpAccountMatches, planGcp, projectOf, readServiceAccount } from './gcp.ts';
import { allowsAdoption, chooseAccount, type Plan } from './plan.ts';
import { parseRoleArn } from '../../providers/aws/arn.ts';

export interface MigrateOptions {
  /** One namespace, or every namespace when undefined. */
  namespace: string | undefined;
  cloudAccount: string | undefined;
}

export interface MigrateDeps {
  cluster: ClusterReader;
  clouds: CloudReaders;
  catalogue: ActionCatalogue;
}

export interface Migration {
  plans: Plan[];
  /** ServiceAccounts whose identity a WorkloadIdentity manages already. */
  managed: string[];
  /** The manifests, in the order of `plans` that have one. */
  manifests: { plan: Plan; workloadIdentity: WorkloadIdentity }[];
  /** Identities that would migrate as these manifests say once their CloudAccount allows adoption (not printed). */
  waiting: { plan: Plan; workloadIdentity: WorkloadIdentity }[];
  /** Said once about the whole run (a dry run the user may not make, say). */
  warnings: string[];
}

const describeError = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Reads the cloud side of one hand-made identity and decides. */
async function planOne(source: HandMade, accounts: CloudAccount[], labels: Record<string, string> | undefined, deps: MigrateDeps, only: string | undefined): Promise<Plan> {
  const plan: Plan = { source, blockers: [] };
  if (source.sharedWith.length) {
    plan.blockers.push(`the identity is shared with ServiceAccount ${source.sharedWith.join(', ')}: a WorkloadIdentity trusts exactly one ServiceAccount; give each its own identity, then migrate`);
  }
  try {
    const choose = (matches: (a: CloudAccount) => boolean, what: string) => {
      const chosen = chooseAccount(accounts, source, labels, matches, what, only);
      if ('blocker' in chosen) {
        plan.blockers.push(chosen.blocker);
        return undefined;
      }
      plan.account = chosen.account.metadata.name;
      if (!allowsAdoption(chosen.account)) plan.adoptionNotAllowed = true;
      return chosen.account;
    };
    switch (source.cloud) {
      case 'aws': {
        const arn = parseRoleArn(source.identity);
        if (!arn) return { ...plan, blockers: [...plan.blockers, `${source.identity} is not an IAM role ARN`] };
        plan.resolved = source.identity;
        const account = choose((a) => awsAccountMatches(a, source.identity), `AWS account ${arn.accountId}`);
        if (!account) return plan;
        const facts = await readRole(deps.clouds.aws(account), arn.name);
        if (!facts) return { ...plan, blockers: [...plan.blockers, `IAM role ${arn.name} does not exist in account ${arn.accountId}`] };
        plan.cloud = planAws(source, account, facts);
        break;
      }
      case 'gcp': {
        const project = projectOf(source.identity);
        if (!project) return { ...plan, blockers: [...plan.blockers, `${source.identity} is not the email of a user-managed Google service account (NAME@PROJECT.iam.gserviceaccount.com)`] };
        plan.resolved = source.identity;
        const account = choose((a) => gcpAccountMatches(a, source.identity), `project ${project}`);
        if (!account) return plan;
        const facts = await readServiceAccount(deps.clouds.gcp(account), project, source.identity);
        if (!facts) return { ...plan, blockers: [...plan.blockers, `Google service account ${source.identity} does not exist`] };
        plan.cloud = planGcp(source, account, facts);
        break;
      }
      case 'azure': {
        const candidates = accounts.filter((a) => a.spec.azure && (only === undefined || a.metadata.name === only));
        const subscriptions = candidates.map((a) => a.spec.azure?.subscriptionId ?? '');
        const identity = await findIdentity(deps.clouds.azureInventory, subscriptions, source.identity);
        if (!identity) {
          const where = subscriptions.length ? `subscription ${[...new Set(subscriptions)].join(', ')}` : 'no subscription (there is no Azure CloudAccount)';
          return { ...plan, blockers: [...plan.blockers, `no user-assigned managed identity with client id ${source.identity} in ${where}`] };
        }
        plan.resolved = identity.id;
        const account = choose((a) => azureAccountMatches(a, identity.id), `the resource group of ${identity.id} (Keyless adopts only identities in its CloudAccount's resource group)`);
        if (!account) return plan;
        plan.cloud = planAzure(source, account, await readIdentity(deps.clouds.azure(account), deps.clouds.azureInventory, identity));
        break;
      }
    }
  } catch (err) {
    plan.blockers.push(`could not read the ${source.cloud} side: ${describeError(err)}`);
  }
  return plan;
}

function manifestOf(plan: Plan, name: string): WorkloadIdentity {
  const cloud = plan.cloud;
  if (!cloud || !plan.account) throw new Error('no plan to write');
  return {
    apiVersion: API_VERSION,
    kind: 'WorkloadIdentity',
    metadata: {
      name,
      namespace: plan.source.namespace,
      annotations: {
        [WORKLOAD_IDENTITY_ANNOTATION.adopt]: cloud.adopt,
        ...(cloud.takeOverAnnotations ? { [WORKLOAD_IDENTITY_ANNOTATION.takeOverAnnotations]: 'true' } : {}),
      },
    },
    // Orphan until the team is sure: deleting the WorkloadIdentity to back out must not delete an identity that
    // workloads used long before Keyless (docs/kubectl-plugin.md#after-the-switch).
    spec: { serviceAccountName: plan.source.serviceAccount, cloudAccountRef: { name: plan.account }, deletionPolicy: 'Orphan', ...cloud.spec },
  };
}

/**
 * A WorkloadIdentity name of its own: the ServiceAccount's without a -sa suffix (catalog-sa → catalog), else with the
 * cloud after it, else numbered.
 */
export function nameFor(source: HandMade, taken: Set<string>): string {
  const key = (n: string) => `${source.namespace}/${n}`;
  const base = source.serviceAccount.replace(/-(sa|serviceaccount)$/, '') || source.serviceAccount;
  let name = base;
  for (let i = 1; taken.has(key(name)); i++) name = i === 1 ? `${base}-${source.cloud}` : `${base}-${source.cloud}-${i}`;
  taken.add(key(name));
  return name;
}

export async function migrate(deps: MigrateDeps, opts: MigrateOptions): Promise<Migration> {
  const { cluster } = deps;
  const [accounts, serviceAccounts, identities] = await Promise.all([cluster.cloudAccounts(), cluster.serviceAccounts(opts.namespace), cluster.workloadIdentities(opts.namespace)]);
  if (opts.cloudAccount !== undefined && !accounts.some((a) => a.metadata.name === opts.cloudAccount)) throw new Error(`CloudAccount ${opts.cloudAccount} does not exist`);
  const warnings: string[] = [];
  // An identity shared across namespaces is shared all the same: look at every ServiceAccount when allowed to.
  let everyone = serviceAccounts;
  if (opts.namespace !== undefined) {
    try {
      everyone = await cluster.serviceAccounts(undefined);
    } catch (err) {
      if (!(err instanceof KubeApiError && err.code === 403)) throw err;
      warnings.push(`ServiceAccounts outside namespace ${opts.namespace} could not be read: an identity they share with it is not noticed`);
    }
  }
  const { handMade, managed } = handMadeIdentities(serviceAccounts, identities, everyone);
  const scoped = opts.cloudAccount === undefined ? handMade : handMade.filter((h) => accounts.some((a) => a.metadata.name === opts.cloudAccount && a.spec[h.cloud] !== undefined));

  const labels = new Map<string, Record<string, string> | undefined>();
  const plans: Plan[] = [];
  for (const source of scoped) {
    if (!labels.has(source.namespace)) labels.set(source.namespace, (await cluster.namespace(source.namespace))?.metadata?.labels ?? {});
    plans.push(await planOne(source, accounts, labels.get(source.namespace), deps, opts.cloudAccount));
  }

  const taken = new Set(identities.map((wi) => `${wi.metadata.namespace ?? ''}/${wi.metadata.name}`));
  const manifests: Migration['manifests'] = [];
  const waiting: Migration['waiting'] = [];
  let dryRunForbidden = false;
  for (const plan of plans) {
    if (!plan.cloud || plan.blockers.length || plan.cloud.blockers.length) continue;
    const account = accounts.find((a) => a.metadata.name === plan.account);
    if (!account) continue;
    const wi = manifestOf(plan, nameFor(plan.source, taken));
    const verdict = await evaluateGuardrails(wi.spec, account, deps.catalogue);
    for (const v of verdict.violations) plan.cloud.blockers.push(`CloudAccount ${account.metadata.name}'s guardrails refuse ${describeViolation(v)}: the WorkloadIdentity would not be provisioned`);
    for (const f of await ineffectiveGrants(wi.spec, deps.catalogue)) plan.cloud.notes.push(`it grants nothing today either (GrantsNothing): ${describeIneffective(f)}`);
    if (!dryRunForbidden) {
      try {
        const refusal = await cluster.dryRunCreate(wi);
        if (refusal) plan.cloud.blockers.push(`the API server refuses the WorkloadIdentity: ${refusal}`);
      } catch (err) {
        if (!(err instanceof KubeApiError && err.code === 403)) throw err;
        dryRunForbidden = true;
        warnings.push('the manifests were not validated by the API server: creating WorkloadIdentities (even as a dry run) is forbidden to you');
      }
    }
    if (plan.cloud.blockers.length) continue;
    (plan.adoptionNotAllowed ? waiting : manifests).push({ plan, workloadIdentity: wi });
  }
  return { plans, managed, manifests, waiting, warnings };
}

/** Everything that keeps a plan from a manifest. */
export function blockersOf(plan: Plan): string[] {
  return [...plan.blockers, ...(plan.cloud?.blockers ?? [])];
}
