// metav1.Condition bookkeeping: lastTransitionTime moves only when status flips, so an unchanged reconcile
// produces an identical status and no write (apimachinery pkg/api/meta/conditions.go semantics).
import type { Condition } from '../api/types.ts';

export type ConditionInput = Pick<Condition, 'type' | 'status' | 'reason' | 'message'>;

/** metav1.Condition allows 32 KiB; a message a person reads should never come near it. */
export const MAX_MESSAGE_LENGTH = 4096;

function bounded(message: string): string {
  return message.length > MAX_MESSAGE_LENGTH ? `${message.slice(0, MAX_MESSAGE_LENGTH - 15)} ...(truncated)` : message;
}

/** Merges `updates` into `current`, keeping lastTransitionTime for conditions whose status did not change. */
export function mergeConditions(
  current: readonly Condition[] | undefined,
  updates: readonly ConditionInput[],
  generation: number | undefined,
  now: Date,
): Condition[] {
  const previous = new Map((current ?? []).map((c) => [c.type, c]));
  const timestamp = now.toISOString().replace(/\.\d+Z$/, 'Z');
  return updates.map((u) => {
    const old = previous.get(u.type);
    return {
      type: u.type,
      status: u.status,
      reason: u.reason,
      message: bounded(u.message),
      ...(generation === undefined ? {} : { observedGeneration: generation }),
      lastTransitionTime: old && old.status === u.status ? old.lastTransitionTime : timestamp,
    };
  });
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** Structural equality for status objects (key order does not matter). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  }
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return (
    ka.length === kb.length &&
    ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  );
}
