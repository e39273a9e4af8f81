// metav1.LabelSelector semantics (apimachinery pkg/apis/meta/v1/helpers.go): matchLabels and matchExpressions are
// ANDed; an empty selector selects everything.
import type { LabelSelector } from '../api/types.ts';

export function selects(selector: LabelSelector | undefined, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  for (const [key, value] of Object.entries(selector?.matchLabels ?? {})) {
    if (l[key] !== value) return false;
  }
  for (const req of selector?.matchExpressions ?? []) {
    const has = Object.hasOwn(l, req.key);
    const values = req.values ?? [];
    const ok =
      req.operator === 'In' ? has && values.includes(l[req.key] ?? '') :
      req.operator === 'NotIn' ? !has || !values.includes(l[req.key] ?? '') :
      req.operator === 'Exists' ? has :
      !has;
    if (!ok) return false;
  }
  return true;
}
