// AWS: an Allow statement's action grants nothing when none of the statement's resources can name a resource type
// the action applies to — `s3:GetObject` on `arn:aws:s3:::bucket` (a bucket, not an object), `s3:ListBucket` on
// `arn:aws:s3:::bucket/*` — the classic "AccessDenied although I granted it". The resource types and their ARN
// formats come from the Service Authorization Reference (the catalogue), as the linter parliament reads them.
import type { AwsWorkloadIdentitySpec } from '../../api/types.ts';
import type { ActionCatalogue } from '../guardrails/index.ts';
import { globMatches } from '../patterns.ts';
import { arnFormatAdmits } from './arn-format.ts';
import type { Ineffective } from './types.ts';

async function concreteActions(catalogue: ActionCatalogue, action: string): Promise<[string, string[]] | undefined> {
  const i = action.indexOf(':');
  if (i < 0) return undefined;
  const service = action.slice(0, i).toLowerCase();
  const known = await catalogue.actions(service);
  if (!known) return undefined;
  return [service, known.filter((a) => globMatches(action.slice(i + 1), a, true))];
}

export async function ineffectiveAws(spec: AwsWorkloadIdentitySpec, catalogue: ActionCatalogue): Promise<Ineffective[]> {
  const found: Ineffective[] = [];
  for (const [i, statement] of (spec.policy ?? []).entries()) {
    // A Deny grants nothing by design; `*` (or a policy variable, resolved only at request time) can name anything.
    if (statement.effect !== 'Allow' || statement.resources.some((r) => r === '*' || r.includes('${'))) continue;
    for (const action of statement.actions) {
      const concrete = await concreteActions(catalogue, action);
      // Unknown actions are the guardrails' business; an unknown service grants nothing Keyless can judge.
      if (!concrete || concrete[1].length === 0) continue;
      const [service, names] = concrete;
      const expected = new Set<string>();
      let applies = false;
      for (const name of names) {
        const resources = await catalogue.resources(service, name);
        if (!resources) {
          applies = true;
          break;
        }
        if (resources.wildcardOnly) {
          expected.add('"*" (it has no resource-level permissions)');
          continue;
        }
        if (resources.types.some((t) => statement.resources.some((r) => arnFormatAdmits(t.arn, r)))) {
          applies = true;
          break;
        }
        for (const t of resources.types) expected.add(t.arn);
      }
      if (applies) continue;
      const wanted = [...expected];
      found.push({
        field: `spec.aws.policy[${i}].actions`,
        entry: action,
        why: `grants nothing on ${statement.resources.join(', ')}: it applies to ${wanted.slice(0, 4).join(' or ')}${wanted.length > 4 ? ' or another type' : ''}`,
      });
    }
  }
  return found;
}
