import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aWorkloadIdentity, condition, IRSA_STATUS } from './fake/fixtures.ts';
import { firstNotReady, renderStatus, statusRow } from './status.ts';

describe('status', () => {
  const rows: [string, ReturnType<typeof aWorkloadIdentity>, { step: string; reason: string }][] = [
    ['a Ready identity has no step to show', aWorkloadIdentity('catalog', IRSA_STATUS), { step: '-', reason: 'Ready' }],
    [
      'the failed step, not the steps after it that were not attempted',
      aWorkloadIdentity('catalog', IRSA_STATUS, [condition('TrustReady', 'False', 'OIDCProviderNotFound'), condition('PermissionsReady', 'Unknown', 'Blocked'), condition('Ready', 'False', 'OIDCProviderNotFound')]),
      { step: 'TrustReady', reason: 'OIDCProviderNotFound' },
    ],
    [
      'Ready itself when the reconcile stopped before any step',
      aWorkloadIdentity('catalog', {}, [condition('IdentityReady', 'Unknown', 'Blocked'), condition('Ready', 'False', 'CloudAccountNotFound')]),
      { step: 'Ready', reason: 'CloudAccountNotFound' },
    ],
    [
      'a Ready identity whose pods need a restart',
      aWorkloadIdentity('catalog', IRSA_STATUS, [condition('WorkloadsUpToDate', 'False', 'PodsNeedRestart')]),
      { step: 'WorkloadsUpToDate', reason: 'PodsNeedRestart' },
    ],
    [
      'a Ready identity the cloud will not exchange tokens for',
      aWorkloadIdentity('catalog', IRSA_STATUS, [condition('WorkloadsUpToDate', 'True', 'UpToDate'), condition('CredentialsVerified', 'False', 'TrustRejected')]),
      { step: 'CredentialsVerified', reason: 'TrustRejected' },
    ],
  ];
  for (const [why, wi, expected] of rows) {
    it(why, () => {
      const { step, condition: c } = firstNotReady(wi);
      assert.deepEqual({ step, reason: c?.reason }, expected);
    });
  }

  it('says when there is no status at all, and that the operator may not be running', () => {
    const wi = { ...aWorkloadIdentity('catalog'), status: undefined };
    assert.deepEqual({ ready: statusRow(wi).ready, reason: statusRow(wi).reason }, { ready: 'Unknown', reason: 'NotReconciled' });
    assert.match(statusRow(wi).message, /is the Keyless operator running/);
  });

  it('says when the status is for an older generation of the spec', () => {
    const wi = aWorkloadIdentity('catalog', IRSA_STATUS);
    wi.metadata.generation = 3;
    assert.match(statusRow(wi).message, /^\(status is for generation 1, the spec is at 3\)/);
  });

  it('prints one aligned row per identity, sorted, with the first sentence of the message unless wide', () => {
    const broken = aWorkloadIdentity('broken', {}, [condition('Ready', 'False', 'CloudAccountNotFound', 'CloudAccount "nowhere" does not exist. Create it or fix spec.cloudAccountRef.name.')]);
    const text = renderStatus([aWorkloadIdentity('catalog', IRSA_STATUS), broken], { allNamespaces: true, wide: false });
    assert.equal(
      text,
      [
        'NAMESPACE   NAME      SERVICEACCOUNT   CLOUD   MECHANISM   IDENTITY                                                                    READY   STEP    REASON                 MESSAGE',
        'bookstore   broken    broken-sa        aws     -           -                                                                           False   Ready   CloudAccountNotFound   CloudAccount "nowhere" does not exist.',
        'bookstore   catalog   catalog-sa       aws     IRSA        arn:aws:iam::111122223333:role/keyless/keyless-bookstore-catalog-1a2b3c4d   True    -       Ready                  Ready Ready',
        '',
      ].join('\n'),
    );
    assert.match(renderStatus([broken], { allNamespaces: false, wide: true }), /does not exist\. Create it or fix spec\.cloudAccountRef\.name\.$/m);
  });
});
