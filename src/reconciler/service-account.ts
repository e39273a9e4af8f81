// Which ServiceAccount annotations Keyless owns, read from server-side apply's managedFields, so the operator
// changes only its own keys and never fights a GitOps tool that owns the rest of the object.
import type { V1ServiceAccount } from '@kubernetes/client-node';
import { FIELD_MANAGER } from '../api/constants.ts';

/** Annotation keys our field manager owns on this ServiceAccount. */
export function ownedAnnotationKeys(sa: V1ServiceAccount): string[] {
  const keys: string[] = [];
  for (const entry of sa.metadata?.managedFields ?? []) {
    if (entry.manager !== FIELD_MANAGER || entry.operation !== 'Apply') continue;
    const fields = entry.fieldsV1 as { 'f:metadata'?: { 'f:annotations'?: Record<string, unknown> } } | undefined;
    for (const field of Object.keys(fields?.['f:metadata']?.['f:annotations'] ?? {})) {
      if (field.startsWith('f:')) keys.push(field.slice(2));
    }
  }
  return keys;
}

/** True when the ServiceAccount already carries exactly `desired` as our annotations. */
export function annotationsUpToDate(sa: V1ServiceAccount, desired: Record<string, string>): boolean {
  const current = sa.metadata?.annotations ?? {};
  const owned = ownedAnnotationKeys(sa);
  return (
    Object.entries(desired).every(([k, v]) => current[k] === v && owned.includes(k)) &&
    owned.every((k) => k in desired)
  );
}
