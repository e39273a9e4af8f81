import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1ServiceAccount } from '@kubernetes/client-node';
import { annotationsUpToDate, ownedAnnotationKeys } from './service-account.ts';

const sa = (annotations: Record<string, string>, owned: string[]): V1ServiceAccount => ({
  metadata: {
    name: 'sa',
    annotations,
    managedFields: [
      { manager: 'argocd', operation: 'Apply', fieldsV1: { 'f:metadata': { 'f:annotations': { 'f:team': {} } } } },
      { manager: 'keyless-aws', operation: 'Apply', fieldsV1: { 'f:metadata': { 'f:annotations': Object.fromEntries(owned.map((k) => [`f:${k}`, {}])) } } },
    ],
  },
});

describe('ServiceAccount annotation ownership', () => {
  it('keeps the managers of different clouds apart', () => {
    assert.deepEqual(ownedAnnotationKeys(sa({ x: '1' }, ['x']), 'keyless-azure'), []);
  });

  it('reads only the keys our field manager applied', () => {
    assert.deepEqual(ownedAnnotationKeys(sa({ team: 'a', x: '1' }, ['x']), 'keyless-aws'), ['x']);
  });

  it('is up to date only when values match and we own no extra keys', () => {
    const m = 'keyless-aws';
    assert.ok(annotationsUpToDate(sa({ team: 'a', x: '1' }, ['x']), { x: '1' }, m));
    assert.ok(!annotationsUpToDate(sa({ x: '2' }, ['x']), { x: '1' }, m));
    assert.ok(!annotationsUpToDate(sa({ x: '1', y: '2' }, ['x', 'y']), { x: '1' }, m));
    assert.ok(!annotationsUpToDate(sa({ x: '1' }, []), { x: '1' }, m), 'a value someone else set is not ours yet');
    assert.ok(annotationsUpToDate(sa({ team: 'a' }, []), {}, m));
  });
});
