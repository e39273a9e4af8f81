// The Azure side of a CloudAccount: the issuer is the AKS cluster's OIDC issuer as written in the spec (Azure has
// no API that tells it from the subscription), and the resource group the identities go into must exist and be
// readable by the operator: its list of identities, the copy the account's identities share, answers both. Says precisely what to do when it is not.
import { REASON } from '../../api/constants.ts';
import type { CloudAccount } from '../../api/types.ts';
import { isCloudError } from '../cloud-error.ts';
import type { AccountVerdict } from '../types.ts';
import type { SharedMsiPort } from './arm-port.ts';

export async function checkAzureAccount(msi: SharedMsiPort, account: CloudAccount): Promise<AccountVerdict> {
  const spec = account.spec.azure;
  if (!spec) throw new Error('not an Azure account');
  const issuer = spec.oidcIssuer;
  const where = `resource group ${spec.resourceGroup} of subscription ${spec.subscriptionId}`;
  try {
    await msi.sharedIdentities();
  } catch (err) {
    if (isCloudError(err) && (err.code === 'ResourceGroupNotFound' || err.code === 'SubscriptionNotFound')) {
      return {
        ok: false,
        reason: REASON.ResourceGroupNotFound,
        issuer,
        issuerFetchedByCloud: true,
        message: `Azure says ${where} does not exist (${err.code}). Create it (az group create --subscription ${spec.subscriptionId} --name ${spec.resourceGroup} --location ${spec.location}) or fix spec.azure.subscriptionId and spec.azure.resourceGroup.`,
      };
    }
    if (isCloudError(err, 'terminal')) {
      return {
        ok: false,
        reason: REASON.CloudRejected,
        issuer,
        issuerFetchedByCloud: true,
        message: `The operator's Azure identity may not list managed identities in ${where} (${err.code}). Grant it Managed Identity Contributor on that resource group, Reader on the subscription, and Role Based Access Control Administrator on the scopes WorkloadIdentities assign roles at.`,
      };
    }
    throw err;
  }
  return {
    ok: true,
    reason: REASON.Ready,
    issuer,
    // Entra ID fetches the issuer's discovery document and JWKS for every exchange of a federated credential.
    issuerFetchedByCloud: true,
    message: `Managed identities are created in ${where} (${spec.location}); their federated credentials trust issuer ${issuer}, which must be this AKS cluster's OIDC issuer (az aks show --query oidcIssuerProfile.issuerUrl).`,
  };
}
