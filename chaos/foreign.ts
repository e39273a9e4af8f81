// Cloud objects Keyless does not own, seeded before the run beside and inside what it manages: an unmarked role
// under its role path, another cluster's role, a Pod Identity association of another namespace, a Google service
// account with its own trust, people's bindings in the very policies the identities are granted in, a managed
// identity with a federated credential in the same resource group and its assignment at the shared scope. Their
// serialized form is taken before and after; any difference is a failed check. A concurrent editor (another tool
// editing the shared Google policies) adds and removes a member of its own while the run goes on, so that etag
// conflicts really happen; its member is left out of the comparison, the seeded ones are not.
import { CreatePodIdentityAssociationCommand, DescribePodIdentityAssociationCommand } from '@aws-sdk/client-eks';
import { CreateRoleCommand, GetRoleCommand, GetRolePolicyCommand, ListRoleTagsCommand, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { MARKER } from '../src/api/constants.ts';
import type { IamBinding } from '../src/providers/gke-workload-identity/policy.ts';
import type { PolicyTarget } from '../src/providers/gke-workload-identity/resources.ts';
import { AZURE_SCOPE, CLUSTER_NAME, GCP_BUCKET, GCP_PROJECT } from '../bench/clouds.ts';
import { TEST_ACCOUNT_ID } from '../test/support/aws.ts';
import { TEST_RESOURCE_GROUP } from '../test/support/azure.ts';
import type { Clouds } from './cloud-state.ts';

const TRUST = (sub: string, providerArn: string) =>
  JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Federated: providerArn }, Action: 'sts:AssumeRoleWithWebIdentity', Condition: { StringEquals: { [`${providerArn.split('oidc-provider/')[1]}:sub`]: sub } } }] });
const INLINE = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::foreign-bucket' }] });
const FOREIGN_ROLES = [
  { name: 'foreign-unmarked', tags: [{ Key: 'team', Value: 'payments' }] },
  {
    name: 'foreign-other-cluster',
    tags: [
      { Key: MARKER.cluster, Value: 'another-cluster' },
      { Key: MARKER.namespace, Value: 'chaos-irsa' },
      { Key: MARKER.name, Value: 'wi-0' },
    ],
  },
];
const FOREIGN_GSA = 'foreign-app';
const FOREIGN_MEMBERS: { target: PolicyTarget; role: string; member: string; condition?: IamBinding['condition'] }[] = [
  { target: { kind: 'project', project: GCP_PROJECT.id }, role: 'roles/monitoring.metricWriter', member: 'user:alice@example.com' },
  { target: { kind: 'project', project: GCP_PROJECT.id }, role: 'roles/storage.objectViewer', member: 'group:data@example.com', condition: { title: 'weekdays', expression: 'request.time.getDayOfWeek() < 5' } },
  {
    target: { kind: 'bucket', bucket: GCP_BUCKET },
    role: 'roles/storage.objectViewer',
    member: `principal://iam.googleapis.com/projects/${GCP_PROJECT.number}/locations/global/workloadIdentityPools/${GCP_PROJECT.id}.svc.id.goog/subject/ns/foreign/sa/app`,
  },
];
const FOREIGN_IDENTITY = 'foreign-app';
/** The concurrent editor's own member: changes all through the run, so it is not compared. */
const EDITOR_MEMBER = /^user:editor-\d+@example\.com$/;

export interface Foreign {
  /** Every foreign object, serialized the same way each time. */
  snapshot(): Promise<Record<string, string>>;
  /** Another tool editing the shared policies every `everyMs` until stopped; returns how many edits it made. */
  startEditor(everyMs: number): { stop(): Promise<number> };
}

export async function seedForeign(clouds: Clouds): Promise<Foreign> {
  const { iam, eks } = clouds.aws.direct;
  for (const role of FOREIGN_ROLES) {
    await iam.send(new CreateRoleCommand({ RoleName: role.name, Path: '/keyless/', AssumeRolePolicyDocument: TRUST('system:serviceaccount:foreign:app', clouds.aws.providerArn), Tags: role.tags }));
    await iam.send(new PutRolePolicyCommand({ RoleName: role.name, PolicyName: 'foreign', PolicyDocument: INLINE }));
  }
  const association = await eks.send(
    new CreatePodIdentityAssociationCommand({ clusterName: CLUSTER_NAME, namespace: 'foreign', serviceAccount: 'app', roleArn: `arn:aws:iam::${TEST_ACCOUNT_ID}:role/keyless/foreign-unmarked` }),
  );
  const associationId = association.association?.associationId ?? '';

  const gcp = clouds.gcp.emulator.client;
  const gsa = await gcp.createServiceAccount(GCP_PROJECT.id, FOREIGN_GSA, { displayName: 'foreign app', description: 'Managed by hand.' });
  const gsaTarget: PolicyTarget = { kind: 'serviceAccount', project: GCP_PROJECT.id, email: gsa.email };
  await clouds.gcp.emulator.editByHand(gsaTarget, () => [{ role: 'roles/iam.workloadIdentityUser', members: [`serviceAccount:${GCP_PROJECT.id}.svc.id.goog[foreign/app]`] }]);
  for (const f of FOREIGN_MEMBERS) {
    const policy = await gcp.getIamPolicy(f.target);
    // Version 3: the policy may hold a conditional binding (cloud.google.com/iam/docs/policies#versions).
    await gcp.setIamPolicy(f.target, { ...policy, version: 3, bindings: [...(policy.bindings ?? []), { role: f.role, members: [f.member], ...(f.condition ? { condition: f.condition } : {}) }] });
  }

  const msi = clouds.azure.test.msi();
  const identity = await msi.userAssignedIdentities.createOrUpdate(TEST_RESOURCE_GROUP, FOREIGN_IDENTITY, { location: 'eastus', tags: { team: 'payments' } });
  await msi.federatedIdentityCredentials.createOrUpdate(TEST_RESOURCE_GROUP, FOREIGN_IDENTITY, 'foreign', { issuer: clouds.issuer, subject: 'system:serviceaccount:foreign:app', audiences: ['api://AzureADTokenExchange'] });
  const readerGuid = 'acdd72a7-3385-48ef-bd42-f606fba81ae7';
  const assignmentName = '5f0a7d3e-1c2b-4e6f-9a8b-0c1d2e3f4a5b';
  await clouds.azure.test.authorization().roleAssignments.create(AZURE_SCOPE, assignmentName, {
    roleDefinitionId: `${AZURE_SCOPE.split('/resourceGroups/')[0]}/providers/Microsoft.Authorization/roleDefinitions/${readerGuid}`,
    principalId: identity.principalId ?? '',
    principalType: 'ServicePrincipal',
  });

  const sharedTargets: PolicyTarget[] = [
    { kind: 'project', project: GCP_PROJECT.id },
    { kind: 'bucket', bucket: GCP_BUCKET },
  ];
  const stable = (v: unknown) => JSON.stringify(v, (_k, value: unknown) => (value instanceof Map ? [...value.entries()].sort() : value));

  return {
    snapshot: async () => {
      const out: Record<string, string> = {};
      for (const role of FOREIGN_ROLES) {
        const got = await iam.send(new GetRoleCommand({ RoleName: role.name }));
        const tags = await iam.send(new ListRoleTagsCommand({ RoleName: role.name }));
        const inline = await iam.send(new GetRolePolicyCommand({ RoleName: role.name, PolicyName: 'foreign' }));
        out[`aws role ${role.name}`] = stable({ role: got.Role, tags: tags.Tags, inline: inline.PolicyDocument });
      }
      const a = await eks.send(new DescribePodIdentityAssociationCommand({ clusterName: CLUSTER_NAME, associationId }));
      out['aws pod identity association foreign/app'] = stable(a.association);
      const state = clouds.gcp.emulator.state;
      out[`google service account ${gsa.email}`] = stable({ account: state.serviceAccounts.get(gsa.email), policy: state.policies.get(`serviceAccount/${gsa.email}`)?.bindings });
      for (const target of sharedTargets) {
        const policy = await gcp.getIamPolicy(target);
        // Only the foreign members: Keyless's own come and go, as do the concurrent editor's.
        const foreign = (policy.bindings ?? [])
          .map((b) => ({ ...b, members: (b.members ?? []).filter((m) => FOREIGN_MEMBERS.some((f) => f.member === m)) }))
          .filter((b) => b.members.length > 0);
        out[`google policy ${target.kind}`] = stable(foreign);
      }
      const arm = clouds.azure.test.emulator.state;
      out[`managed identity ${FOREIGN_IDENTITY}`] = stable([...arm.identities.values()].find((i) => i.name === FOREIGN_IDENTITY));
      out[`role assignment ${assignmentName}`] = stable([...arm.assignments.values()].find((x) => x.name === assignmentName));
      return out;
    },
    startEditor(everyMs) {
      let edits = 0;
      let running = true;
      const loop = (async () => {
        while (running) {
          await new Promise((r) => setTimeout(r, everyMs));
          const target = sharedTargets[edits % sharedTargets.length] as PolicyTarget;
          const member = `user:editor-${edits}@example.com`;
          // Add this round's member and drop the last round's: a read-modify-write with an etag, redone on conflict.
          await clouds.gcp.emulator
            .editByHand(target, (bindings) => [...bindings.map((b) => ({ ...b, members: (b.members ?? []).filter((m) => !EDITOR_MEMBER.test(m)) })).filter((b) => b.members.length > 0), { role: 'roles/viewer', members: [member] }])
            .then(() => edits++)
            .catch(() => undefined);
        }
      })();
      return {
        stop: async () => {
          running = false;
          await loop;
          return edits;
        },
      };
    },
  };
}
