// Guardrails for one WorkloadIdentity against its CloudAccount: the violations, and the spec with every violating
// grant removed (what an identity that already exists may keep when guardrails are tightened under it).
import type { CloudAccount, WorkloadIdentitySpec } from '../../api/types.ts';
import { evaluateAws, type ActionCatalogue } from './aws.ts';
import { evaluateAzure } from './azure.ts';
import { evaluateGcp } from './gcp.ts';
import type { Violation } from './types.ts';

export type { ActionCatalogue, ActionResources } from './aws.ts';
export { describeViolation, type Violation } from './types.ts';

export interface GuardrailVerdict {
  violations: Violation[];
  permitted: WorkloadIdentitySpec;
}

export async function evaluateGuardrails(spec: WorkloadIdentitySpec, account: CloudAccount, catalogue: ActionCatalogue): Promise<GuardrailVerdict> {
  if (spec.aws) {
    const v = await evaluateAws(spec.aws, account, catalogue);
    return { violations: v.violations, permitted: { ...spec, aws: v.permitted } };
  }
  if (spec.gcp) {
    const v = evaluateGcp(spec.gcp, account);
    return { violations: v.violations, permitted: { ...spec, gcp: v.permitted } };
  }
  if (spec.azure) {
    const v = evaluateAzure(spec.azure, account);
    return { violations: v.violations, permitted: { ...spec, azure: v.permitted } };
  }
  return { violations: [], permitted: spec };
}
