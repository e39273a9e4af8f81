// Which ServiceAccount annotations Keyless owns, read from server-side apply's managedFields, so the operator
// changes only its own keys and never fights a GitOps tool that owns the rest of the object.
import type { V1ServiceAccount } from '@kubernetes/client-node';
import { serviceAccountFieldManager } from '../api/constants.ts';
/** Annotation keys `manager` owns on this ServiceAccount. */
export function ownedAnnotationKeys(sa: V1ServiceAccount, manager: string): string[] {
  const keys: string[] = [];
  for (const entry of sa.metadata?.managedFields ?? []) {
    if (entry.manager !== manager || entry.operation !== 'Apply') continue;
    const fields = entry.fieldsV1 as { 'f:metadata'?: { 'f:annotations'?: Record<string, unknown> } } | undefined;
    for (const field of Object.keys(fields?.['f:metadata']?.['f:annotations'] ?? {})) {
      if (field.startsWith('f:')) keys.push(field.slice(2));
    }
  }
  return keys;
}

/** True when the ServiceAccount already carries exactly `desired` as `manager`'s annotations. */
export function annotationsUpToDate(sa: V1ServiceAccount, desired: Record<string, string>, manager: string): boolean {
  const current = sa.metadata?.annotations ?? {};
  const owned = ownedAnnotationKeys(sa, manager);
  return (
    Object.entries(desired).every(([k, v]) => current[k] === v && owned.includes(k)) &&
    owned.every((k) => k in desired)
  );
}

/** Annotation keys any of Keyless's per-cloud field managers owns. */
export function keylessAnnotationKeys(sa: V1ServiceAccount): string[] {
  return (['aws', 'gcp', 'azure'] as const).flatMap((cloud) => ownedAnnotationKeys(sa, serviceAccountFieldManager(cloud)));
}
