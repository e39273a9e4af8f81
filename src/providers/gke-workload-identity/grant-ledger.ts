// Where each WorkloadIdentity last held grants, so a resource dropped from the spec has its grant removed too:
// the IAM policies of every bucket, topic and secret cannot be searched for our member without Cloud Asset
// Inventory. Kept in memory per CloudAccount; after an operator restart a resource removed from the spec in
// the meantime is no longer known (see docs/gke-workload-identity.md, "Limits").
import type { PolicyTarget } from './resources.ts';
import { targetKey } from './resources.ts';

export class GrantLedger {
  readonly #targets = new Map<string, Map<string, PolicyTarget>>();

  /** Targets recorded for `identity` that are not in `current`. */
  stale(identity: string, current: PolicyTarget[]): PolicyTarget[] {
    const keys = new Set(current.map(targetKey));
    return [...(this.#targets.get(identity)?.values() ?? [])].filter((t) => !keys.has(targetKey(t)));
  }

  record(identity: string, targets: PolicyTarget[]): void {
    this.#targets.set(identity, new Map(targets.map((t) => [targetKey(t), t])));
  }

  forget(identity: string): void {
    this.#targets.delete(identity);
  }
}
