// A differential test of Keyless's "grants nothing" analysis against parliament, an independent IAM policy linter (its
// RESOURCE_MISMATCH finding), over a table of statements: both must flag the same actions, and neither may flag a
// statement that does grant something. parliament runs from the project's .venv (test/emulators/aws/requirements.txt).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { AwsPolicyStatement } from '../../src/api/types.ts';
import { ineffectiveAws } from '../../src/domain/grants/aws.ts';
import { iamDataCatalogue } from '../../src/providers/aws/action-catalogue.ts';
import { renderInlinePolicy } from '../../src/providers/aws/policy-document.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const catalogue = iamDataCatalogue();

const ANALYZE = `
import json, sys
from parliament import analyze_policy_string
found = analyze_policy_string(sys.stdin.read()).findings
print(json.dumps(sorted({d["action"] for f in found if f.issue == "RESOURCE_MISMATCH" for d in f.detail})))
`;

async function parliament(statement: AwsPolicyStatement): Promise<string[]> {
  const run = promisify(execFile)(path.join(root, '.venv/bin/python'), ['-c', ANALYZE], { timeout: 60_000 });
  run.child.stdin?.end(JSON.stringify(renderInlinePolicy([statement])));
  return (JSON.parse((await run).stdout) as string[]).map((a) => a.toLowerCase());
}

const allow = (actions: string[], resources: string[]): AwsPolicyStatement => ({ effect: 'Allow', actions, resources });

const TABLE: [string, AwsPolicyStatement][] = [
  ['an object action on a bucket', allow(['s3:GetObject'], ['arn:aws:s3:::covers'])],
  ['a bucket action on objects', allow(['s3:ListBucket'], ['arn:aws:s3:::covers/*'])],
  ['the right pairs', allow(['s3:GetObject', 's3:ListBucket'], ['arn:aws:s3:::covers', 'arn:aws:s3:::covers/*'])],
  ['an object action on objects', allow(['s3:PutObject'], ['arn:aws:s3:::covers/uploads/*'])],
  ['a queue action on a bucket', allow(['sqs:SendMessage'], ['arn:aws:s3:::covers'])],
  ['a queue action on a queue', allow(['sqs:SendMessage', 'sqs:ReceiveMessage'], ['arn:aws:sqs:us-east-1:123456789012:orders'])],
  ['a DynamoDB item action on a table', allow(['dynamodb:GetItem'], ['arn:aws:dynamodb:us-east-1:123456789012:table/books'])],
  ['a secret action on a secret', allow(['secretsmanager:GetSecretValue'], ['arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf'])],
  ['a KMS action on a key', allow(['kms:Decrypt'], ['arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab'])],
  ['a KMS action on a bucket', allow(['kms:Decrypt'], ['arn:aws:s3:::covers/*'])],
];

const ours = async (statement: AwsPolicyStatement) => (await ineffectiveAws({ policy: [statement] }, catalogue)).map((f) => f.entry.toLowerCase()).sort();

describe('ineffective AWS grants, compared with parliament', () => {
  for (const [what, statement] of TABLE) {
    it(what, async () => {
      assert.deepEqual(await ours(statement), await parliament(statement));
    });
  }

  it('is stricter where parliament reads a name placeholder as spanning "/": a table action on an index ARN', async () => {
    // parliament turns every ${...} of the ARN format into *, so table/${TableName} also matches table/books/index/x;
    // a table name has no "/", so DescribeTable on an index grants nothing.
    const statement = allow(['dynamodb:DescribeTable'], ['arn:aws:dynamodb:us-east-1:123456789012:table/books/index/by-author']);
    assert.deepEqual(await parliament(statement), []);
    assert.deepEqual(await ours(statement), ['dynamodb:describetable']);
  });
});
