/** One guardrail a spec breaks: where, what, which rule, and what to do instead. */
export interface Violation {
  field: string;
  entry: string;
  rule: string;
  hint: string;
}

export function describeViolation(v: Violation): string {
  return `${v.field}: "${v.entry}" breaks ${v.rule} (${v.hint})`;
}
