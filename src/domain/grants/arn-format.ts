// Whether a policy's resource pattern can name any resource of a type, given the type's ARN format from the AWS
// Service Authorization Reference (`arn:${Partition}:s3:::${BucketName}/${ObjectName}`). Both are patterns: the
// policy's with IAM's `*` and `?`, the format with `${...}` placeholders; the question is whether one ARN matches both.

type FormatToken = { literal: string } | { placeholder: true; forbidden: string };
type PatternToken = { literal: string } | { star: true } | { one: true };

/**
 * Names whose values are plain names even at the end of an ARN (S3 bucket naming rules, SQS/SNS/DynamoDB names):
 * no `/`, no `:`. Any other final placeholder may contain anything (an object key, a role path, a Lambda qualifier),
 * so a resource is reported as naming nothing only when that is certain.
 */
const PLAIN_NAMES = new Set(['bucketname', 'queuename', 'topicname', 'tablename']);

/**
 * A placeholder stands for a non-empty value that never contains the separator written right after it in the format
 * (a region has no `:`, a bucket name before `/${ObjectName}` no `/`).
 */
function formatTokens(format: string): FormatToken[] {
  const tokens: FormatToken[] = [];
  const parts = format.split(/(\$\{[^}]+\})/).filter((p) => p !== '');
  parts.forEach((part, i) => {
    if (!part.startsWith('${')) {
      for (const c of part) tokens.push({ literal: c });
      return;
    }
    const next = parts[i + 1]?.[0];
    const forbidden = next === undefined ? (PLAIN_NAMES.has(part.slice(2, -1)) ? '/:' : '') : next === '/' || next === ':' ? next : ':';
    tokens.push({ placeholder: true, forbidden });
  });
  return tokens;
}

function patternTokens(pattern: string): PatternToken[] {
  return [...pattern].map((c) => (c === '*' ? { star: true } : c === '?' ? { one: true } : { literal: c }));
}

/** Whether some ARN matches both the format and the pattern (case-insensitive, as ARN service names are). */
export function arnFormatAdmits(format: string, pattern: string): boolean {
  const f = formatTokens(format.toLowerCase());
  const p = patternTokens(pattern.toLowerCase());
  const seen = new Set<string>();
  // State: position in the format, whether the current placeholder has consumed a character yet, position in the
  // pattern. A depth-first walk over the product of the two automata.
  const walk = (i: number, started: boolean, j: number): boolean => {
    const key = `${i},${started ? 1 : 0},${j}`;
    if (seen.has(key)) return false;
    seen.add(key);
    const ft = f[i];
    const pt = p[j];
    if (ft === undefined && pt === undefined) return true;
    // Pattern `*` may match nothing.
    if (pt && 'star' in pt && walk(i, started, j + 1)) return true;
    // A placeholder that has consumed a character may end here.
    if (ft && 'placeholder' in ft && started && walk(i + 1, false, j)) return true;
    if (ft === undefined || pt === undefined) return false;
    // Consume one character both sides agree on.
    if ('literal' in ft) {
      if ('literal' in pt) return pt.literal === ft.literal && walk(i + 1, false, j + 1);
      return walk(i + 1, false, 'star' in pt ? j : j + 1);
    }
    if ('literal' in pt) return !ft.forbidden.includes(pt.literal) && walk(i, true, j + 1);
    // Placeholder against `?` or `*`: some allowed character exists.
    return walk(i, true, 'star' in pt ? j : j + 1);
  };
  return walk(0, false, 0);
}
