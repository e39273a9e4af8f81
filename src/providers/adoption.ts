// Adoption (docs/guardrails.md#adoption): a WorkloadIdentity annotated keyless.dev/adopt takes over a cloud identity
// that carries no Keyless marker, where its CloudAccount allows adoption. "true" names the identity with the derived
// name; any other value names an existing identity by its identifier — how a hand-made IRSA role, Google service
// account or managed identity moves under Keyless without a new identity (kubectl keyless migrate writes these).
// An identity named that way is taken over only when it already trusts exactly this WorkloadIdentity's
// ServiceAccount: the annotation can then only hand a ServiceAccount the identity it already has, never another one.
import { REASON, WORKLOAD_IDENTITY_ANNOTATION } from '../api/constants.ts';
import { ProviderError, type IdentityContext, type Step } from './types.ts';

/** The context fields keyless.dev/adopt sets: `adopt` only where the account allows it, `adoptIdentity` always. */
export function adoption(annotation: string | undefined, allowed: boolean): Pick<IdentityContext, 'adopt' | 'adoptIdentity'> {
  const value = annotation?.trim() ?? '';
  if (value === '' || value === 'false') return { adopt: false };
  return { adopt: allowed, ...(value === 'true' ? {} : { adoptIdentity: value }) };
}

/**
 * What is wrong with the identity keyless.dev/adopt names, if anything: `parsed` says whether the provider read it
 * as an identity of this CloudAccount (`form` describes one), `adopted` whether the record already holds it (an
 * account that stops allowing adoption does not take back what was adopted).
 */
export function declaredIdentityProblems(ctx: IdentityContext, parsed: boolean, form: string, adopted: boolean): string[] {
  const declared = ctx.adoptIdentity;
  if (declared === undefined) return [];
  const where = `annotation ${WORKLOAD_IDENTITY_ANNOTATION.adopt}`;
  if (!parsed) return [`${where} "${declared}" is neither "true" nor ${form}`];
  if (!ctx.adopt && !adopted) {
    return [`${where} names ${declared}, but CloudAccount ${ctx.account.metadata.name} does not allow adoption (spec.guardrails.allowAdoption); ask the platform team to allow it, or remove the annotation`];
  }
  return [];
}

/** The NotOwned condition for a named identity that does not trust this ServiceAccount: it is never taken over. */
export function notAdoptable(step: Step, what: string, trust: string, fix: string): ProviderError {
  return new ProviderError(
    step,
    REASON.NotOwned,
    `${what} has no Keyless ownership marker and ${trust}. Keyless adopts an identity named in ${WORKLOAD_IDENTITY_ANNOTATION.adopt} only when it already trusts exactly this WorkloadIdentity's ServiceAccount: ${fix}.`,
    false,
  );
}
