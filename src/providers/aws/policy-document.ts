// IAM policy documents: rendering from the WorkloadIdentity spec, parsing what IAM returns, and semantic
// comparison. IAM returns documents URL-encoded (RFC 3986) and the JS v3 SDK does not decode them
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRole.html), and IAM may reorder or reshape
// values (a one-element array comes back as a string), so documents are compared in a canonical form, never as
// strings.
import type { AwsPolicyStatement } from '../../api/types.ts';

export interface IamStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal?: '*' | Record<string, string | string[]>;
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: IamStatement[];
}

export function renderInlinePolicy(statements: readonly AwsPolicyStatement[] | undefined): PolicyDocument | undefined {
  if (!statements?.length) return undefined;
  return {
    Version: '2012-10-17',
    Statement: statements.map((s) => ({
      ...(s.sid ? { Sid: s.sid } : {}),
      Effect: s.effect,
      Action: [...s.actions],
      Resource: [...s.resources],
      ...(s.conditions && Object.keys(s.conditions).length ? { Condition: s.conditions } : {}),
    })),
  };
}

/** Parses a policy document as IAM returns it: URL-encoded JSON (or plain JSON from emulators that skip it). */
export function parseIamDocument(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return JSON.parse(decodeURIComponent(raw));
  }
}

const listKeys = new Set(['Action', 'NotAction', 'Resource', 'NotResource']);

function toSortedList(value: unknown): unknown {
  const list = Array.isArray(value) ? value : [value];
  return [...new Set(list.map((v) => String(v)))].sort();
}

function canonicalStatement(statement: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(statement)) {
    if (listKeys.has(key)) {
      out[key] = toSortedList(value);
    } else if ((key === 'Principal' || key === 'NotPrincipal') && typeof value === 'object' && value !== null) {
      out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toSortedList(v)]));
    } else if (key === 'Condition' && typeof value === 'object' && value !== null) {
      out[key] = Object.fromEntries(
        Object.entries(value as Record<string, Record<string, unknown>>).map(([op, block]) => [
          op,
          Object.fromEntries(Object.entries(block).map(([k, v]) => [k, toSortedList(v)])),
        ]),
      );
    } else {
      out[key] = value;
    }
  }
  return out;
}

function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A canonical string for a policy document: equal strings mean equal policies, whatever IAM did to the layout. */
export function canonicalPolicy(doc: unknown): string {
  if (typeof doc !== 'object' || doc === null) return stableStringify(doc);
  const { Statement, ...rest } = doc as { Statement?: unknown };
  const statements = (Array.isArray(Statement) ? Statement : Statement === undefined ? [] : [Statement]) as Record<string, unknown>[];
  const canonical = statements.map((s) => stableStringify(canonicalStatement(s))).sort();
  return stableStringify({ ...rest, Statement: canonical.map((s) => JSON.parse(s) as unknown) });
}

export function samePolicy(a: unknown, b: unknown): boolean {
  return canonicalPolicy(a) === canonicalPolicy(b);
}

/** IAM's size quotas count characters excluding whitespace (IAM quotas: "IAM and AWS STS quotas"). */
export function policySize(doc: unknown): number {
  return JSON.stringify(doc).replace(/\s/g, '').length;
}
