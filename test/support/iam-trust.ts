// Evaluates trust policies with an independent IAM policy engine (@cloud-copilot/iam-simulate) instead of our
// own reading of them. The unsafe entry point is used because the strict one drops condition keys of issuers
// its catalogue does not know (every private OIDC issuer, including the test cluster's).
import { createValidatedPolicy, validateTrustPolicy } from '@cloud-copilot/iam-policy';
import { runUnsafeSimulation, type EvaluationResult } from '@cloud-copilot/iam-simulate';

export interface TrustRequest {
  principal: string;
  action: string;
  roleArn: string;
  context: Record<string, string | string[]>;
}

/** 'Allowed', 'ImplicitlyDenied' or 'ExplicitlyDenied' for one request against a role's trust policy. */
export function evaluateTrust(trustPolicy: unknown, request: TrustRequest): EvaluationResult {
  const accountId = request.roleArn.split(':')[4] ?? '';
  const result = runUnsafeSimulation(
    {
      identityPolicies: [],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: createValidatedPolicy(trustPolicy, validateTrustPolicy, { name: 'trust' }),
      request: {
        principal: request.principal,
        action: request.action,
        resource: { resource: request.roleArn, accountId },
        contextVariables: request.context,
      },
    },
    {},
  );
  return result;
}
