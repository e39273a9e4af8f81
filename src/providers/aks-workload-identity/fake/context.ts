// IdentityContext builders for the AKS provider's unit tests.
import type { CloudAccount, WorkloadIdentitySpec } from '../../../api/types.ts';
import type { IdentityContext } from '../../types.ts';

export const AZURE_SUBSCRIPTION = '00000000-0000-0000-0000-000000000001';
export const AZURE_TENANT = '33333333-3333-3333-3333-333333333333';
export const AZURE_ISSUER = 'https://eastus.oic.prod-aks.azure.com/11111111-1111-1111-1111-111111111111/22222222-2222-2222-2222-222222222222/';

export function azureContext(
  azure: WorkloadIdentitySpec['azure'] = {},
  overrides: { namespace?: string; name?: string; serviceAccountName?: string; cluster?: string; issuer?: string; adopt?: boolean; adoptIdentity?: string } = {},
): IdentityContext {
  const namespace = overrides.namespace ?? 'bookstore';
  const serviceAccountName = overrides.serviceAccountName ?? 'catalog-sa';
  const issuer = overrides.issuer ?? AZURE_ISSUER;
  const account: CloudAccount = {
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'CloudAccount',
    metadata: { name: 'prod-azure' },
    spec: { azure: { subscriptionId: AZURE_SUBSCRIPTION, tenantId: AZURE_TENANT, resourceGroup: 'identities', location: 'eastus', oidcIssuer: issuer } },
    status: { issuer },
  };
  return {
    cluster: overrides.cluster ?? 'c1',
    namespace,
    name: overrides.name ?? 'catalog',
    uid: 'uid-1',
    serviceAccountName,
    subject: `system:serviceaccount:${namespace}:${serviceAccountName}`,
    issuer,
    account,
    serviceAccountAnnotations: undefined,
    ...(overrides.adopt ? { adopt: true } : {}),
    ...(overrides.adoptIdentity ? { adoptIdentity: overrides.adoptIdentity } : {}),
    spec: { serviceAccountName, cloudAccountRef: { name: 'prod-azure' }, azure },
  };
}
