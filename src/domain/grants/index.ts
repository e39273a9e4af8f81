// Grants that grant nothing: entries of a spec the cloud accepts but that allow no request at all, found from each
// cloud's own data where it exists. Reported on PermissionsReady (reason GrantsNothing) and never silently Ready.
import type { WorkloadIdentitySpec } from '../../api/types.ts';
import type { ActionCatalogue } from '../guardrails/index.ts';
import { ineffectiveAws } from './aws.ts';
import { ineffectiveAzure } from './azure.ts';
import { ineffectiveGcp } from './gcp.ts';
import type { Ineffective } from './types.ts';

export { describeIneffective, type Ineffective } from './types.ts';

export async function ineffectiveGrants(spec: WorkloadIdentitySpec, catalogue: ActionCatalogue): Promise<Ineffective[]> {
  if (spec.aws) return ineffectiveAws(spec.aws, catalogue);
  if (spec.gcp) return ineffectiveGcp(spec.gcp);
  if (spec.azure) return ineffectiveAzure(spec.azure);
  return [];
}
