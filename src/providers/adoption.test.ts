import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adoption } from './adoption.ts';

describe('adoption (keyless.dev/adopt)', () => {
  const rows: [string, string | undefined, boolean, ReturnType<typeof adoption>][] = [
    ['no annotation adopts nothing', undefined, true, { adopt: false }],
    ['"false" adopts nothing', 'false', true, { adopt: false }],
    ['"true" adopts the derived name where allowed', 'true', true, { adopt: true }],
    ['"true" where adoption is not allowed', 'true', false, { adopt: false }],
    ['an identifier is named where allowed', ' arn:aws:iam::123456789012:role/app ', true, { adopt: true, adoptIdentity: 'arn:aws:iam::123456789012:role/app' }],
    ['an identifier is named even where not allowed, so nothing else is created meanwhile', 'app@p.iam.gserviceaccount.com', false, { adopt: false, adoptIdentity: 'app@p.iam.gserviceaccount.com' }],
  ];
  for (const [why, annotation, allowed, expected] of rows) {
    it(why, () => assert.deepEqual(adoption(annotation, allowed), expected));
  }
});
