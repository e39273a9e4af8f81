// `make dev-up`, after the control plane and moto are running: installs the CRDs and the operator's RBAC, gives
// the operator a kubeconfig for its own ServiceAccount, registers this cluster's issuer as an IAM OIDC provider
// in moto, and creates the sample CloudAccount `local-aws`. Idempotent.
// With the GCP emulator's endpoint it also creates the sample CloudAccount `local-gcp`, and `local-gcp-federation`: a
// workload identity pool and provider in the emulator trusting this cluster's issuer (with its keys uploaded, as for an
// issuer Google cannot reach), as a platform team sets up Workload Identity Federation for a cluster that is not GKE.
// With the Azure emulator's endpoint it also creates the sample CloudAccount `local-azure`.
// Every local CloudAccount has verification on, with config/verification installed (the operator's permission to mint
// ServiceAccount tokens and the admission policy that bounds it): CredentialsVerified shows the real exchange against
// the checking endpoints hack/dev.sh exports.
//   node hack/dev-setup.ts DEV_DIR MOTO_ENDPOINT [GCP_ENDPOINT [AZURE_ENDPOINT]]
import path from 'node:path';
import { CreateClusterCommand, EKSClient, ListClustersCommand } from '@aws-sdk/client-eks';
import { IAMClient, ListOpenIDConnectProvidersCommand } from '@aws-sdk/client-iam';
import { createOidcProvider } from '../test/support/aws.ts';
import { clusterIssuer, kubectl, kubeConfig, rawGet, repoPath } from '../test/support/cluster.ts';
import { createWorkloadIdentityProvider } from '../test/support/gcp.ts';
import { installOperator } from '../test/support/operator.ts';

const [devDir, motoEndpoint, gcpEndpoint, azureEndpoint] = process.argv.slice(2);
if (!devDir || !motoEndpoint) throw new Error('usage: node hack/dev-setup.ts DEV_DIR MOTO_ENDPOINT');

const kc = kubeConfig();
await installOperator(kc, 'operator', devDir);
await kubectl(['apply', '--server-side', '--field-manager=keyless-dev', '-k', repoPath('config/verification')]);
const verification = { enabled: true };

const issuer = await clusterIssuer(kc);
const iam = new IAMClient({ endpoint: motoEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIDKEYLESSDEV', secretAccessKey: 'keyless-dev' } });
const existing = (await iam.send(new ListOpenIDConnectProvidersCommand({}))).OpenIDConnectProviderList ?? [];
if (!existing.some((p) => p.Arn?.endsWith(issuer.replace(/^https:\/\//, '')))) {
  await createOidcProvider(iam, issuer);
}

// An EKS cluster named `local` in moto, so WorkloadIdentities can use mechanism PodIdentity too.
const eks = new EKSClient({ endpoint: motoEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIDKEYLESSDEV', secretAccessKey: 'keyless-dev' } });
if (!((await eks.send(new ListClustersCommand({}))).clusters ?? []).includes('local')) {
  await eks.send(new CreateClusterCommand({ name: 'local', roleArn: 'arn:aws:iam::123456789012:role/eks', resourcesVpcConfig: { subnetIds: ['subnet-local'] } }));
}

const account = {
  apiVersion: 'keyless.dev/v1alpha1',
  kind: 'CloudAccount',
  metadata: { name: 'local-aws' },
  spec: { aws: { accountId: '123456789012', region: 'us-east-1', clusterName: 'local', oidcIssuer: issuer, mechanism: 'IRSA' }, verification },
};
await kubectl(['apply', '--server-side', '--field-manager=keyless-dev', '-f', '-'], JSON.stringify(account));
console.log(`dev-setup: CRDs and RBAC installed; CloudAccount local-aws trusts issuer ${issuer} (moto at ${motoEndpoint}); operator kubeconfig in ${path.join(devDir, 'operator.kubeconfig')}`);

if (gcpEndpoint) {
  // hack/dev.sh seeds project keyless-dev in the GCP emulator; config/samples/cloudaccount-gcp.yaml is this object.
  const gcpAccount = {
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'CloudAccount',
    metadata: { name: 'local-gcp' },
    spec: { gcp: { projectId: 'keyless-dev', projectNumber: '123456789012', mechanism: 'ServiceAccount' }, verification },
  };
  await kubectl(['apply', '--server-side', '--field-manager=keyless-dev', '-f', '-'], JSON.stringify(gcpAccount));
  console.log(`dev-setup: CloudAccount local-gcp uses project keyless-dev in the GCP emulator at ${gcpEndpoint}`);

  // config/samples/cloudaccount-gcp-federation.yaml with the pool and provider created here.
  const jwks = JSON.parse((await rawGet(kc, '/openid/v1/jwks')).body) as object;
  const provider = await createWorkloadIdentityProvider(gcpEndpoint, 'keyless-dev', { project: 'keyless-dev', pool: 'local-clusters', provider: 'local-dev', issuer, jwks });
  const federationAccount = {
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'CloudAccount',
    metadata: { name: 'local-gcp-federation' },
    spec: { gcp: { projectId: 'keyless-dev', projectNumber: '123456789012', workloadIdentityProvider: provider, mechanism: 'ServiceAccount' }, verification },
  };
  await kubectl(['apply', '--server-side', '--field-manager=keyless-dev', '-f', '-'], JSON.stringify(federationAccount));
  console.log(`dev-setup: CloudAccount local-gcp-federation trusts issuer ${issuer} through ${provider}`);
}

if (azureEndpoint) {
  // hack/dev.sh starts the ARM emulator with this subscription, tenant and resource group; this is
  // config/samples/cloudaccount-azure.yaml with the local cluster's issuer instead of an AKS one.
  const azureAccount = {
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'CloudAccount',
    metadata: { name: 'local-azure' },
    spec: {
      azure: {
        subscriptionId: '00000000-0000-0000-0000-000000000001',
        tenantId: '00000000-0000-0000-0000-000000000002',
        resourceGroup: 'keyless-identities',
        location: 'eastus',
        oidcIssuer: issuer,
      },
      verification,
    },
  };
  await kubectl(['apply', '--server-side', '--field-manager=keyless-dev', '-f', '-'], JSON.stringify(azureAccount));
  console.log(`dev-setup: CloudAccount local-azure trusts issuer ${issuer} (ARM emulator at ${azureEndpoint})`);
}
