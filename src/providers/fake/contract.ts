// The provider contract driven the way the reconciler drives it, for the providers' own tests.
import type { IdentityContext, Provider, Provisioned, Revoked } from '../types.ts';

/** desired → observe → ensure. */
export async function converge<D, O>(provider: Provider<D, O>, ctx: IdentityContext): Promise<Provisioned> {
  const desired = provider.desired(ctx);
  return provider.ensure(desired, await provider.observe(desired));
}

/** Revokes what the record written before `ensure` would name (its intent), from that record alone. */
export async function revokeIntended<D, O>(provider: Provider<D, O>, ctx: IdentityContext): Promise<Revoked> {
  const desired = provider.desired(ctx);
  return provider.revoke(provider.intent(desired, await provider.observe(desired)), ctx);
}
