// Field-by-field differences between two Kubernetes objects (or any JSON values), one line per differing field with
// its path, so a test that compares two renderings says exactly where they part.

export interface DiffOptions {
  /** What the two sides are called in the messages. */
  names: [expected: string, actual: string];
  /**
   * Only the fields `expected` sets must match: `actual` may have more (what an API server defaults). Lists must still
   * have the same items, each compared the same way.
   */
  subset?: boolean;
}

export function objectDifferences(expected: unknown, actual: unknown, opts: DiffOptions, path = ''): string[] {
  const [e, a] = opts.names;
  const show = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v));
  if (Array.isArray(expected) && Array.isArray(actual)) {
    if (expected.length !== actual.length) {
      return [`${path}: ${e} has ${expected.length} items ${show(expected)}, ${a} has ${actual.length} ${show(actual)}`];
    }
    return expected.flatMap((item, i) => objectDifferences(item, actual[i], opts, `${path}[${i}]`));
  }
  if (isRecord(expected) && isRecord(actual)) {
    const keys = new Set([...Object.keys(expected), ...(opts.subset ? [] : Object.keys(actual))]);
    return [...keys].sort().flatMap((k) => objectDifferences(expected[k], actual[k], opts, path ? `${path}.${k}` : k));
  }
  return Object.is(expected, actual) ? [] : [`${path || '(the whole value)'}: ${e} has ${show(expected)}, ${a} has ${show(actual)}`];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
