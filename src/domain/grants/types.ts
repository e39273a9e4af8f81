/** A grant that grants nothing: where it is, the entry, and what it would need to take effect. */
export interface Ineffective {
  field: string;
  entry: string;
  why: string;
}

export function describeIneffective(f: Ineffective): string {
  return `${f.field}: ${f.entry} ${f.why}`;
}
