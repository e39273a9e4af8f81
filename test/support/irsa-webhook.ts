// A stand-in for the EKS pod identity webhook, registered with the real apiserver as a MutatingWebhookConfiguration
// for one test namespace: at pod creation it injects what the real webhook injects for an annotated
// ServiceAccount (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE and the projected aws-iam-token volume). It lets tests
// observe exactly the behaviour users trip over: only pods created after the annotation get credentials.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { AdmissionregistrationV1Api, CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';

interface AdmissionReview {
  request: { uid: string; namespace: string; object: V1Pod };
}

export interface IrsaWebhook {
  stop(): Promise<void>;
}

const TOKEN_PATH = '/var/run/secrets/eks.amazonaws.com/serviceaccount';

export async function startIrsaWebhook(kc: KubeConfig, namespace: string): Promise<IrsaWebhook> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keyless-webhook-'));
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ]);
  const cert = readFileSync(path.join(dir, 'cert.pem'));
  const core = kc.makeApiClient(CoreV1Api);

  const mutate = async (review: AdmissionReview): Promise<{ op: string; path: string; value: unknown }[]> => {
    const pod = review.request.object;
    const sa = await core.readNamespacedServiceAccount({ namespace: review.request.namespace, name: pod.spec?.serviceAccountName ?? 'default' });
    const role = sa.metadata?.annotations?.['eks.amazonaws.com/role-arn'];
    if (!role) return [];
    const env = [
      { name: 'AWS_ROLE_ARN', value: role },
      { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: `${TOKEN_PATH}/token` },
    ];
    return [
      ...(pod.spec?.containers ?? []).flatMap((c, i): { op: string; path: string; value: unknown }[] =>
        c.env ? env.map((e) => ({ op: 'add', path: `/spec/containers/${i}/env/-`, value: e })) : [{ op: 'add', path: `/spec/containers/${i}/env`, value: env }],
      ),
      ...(pod.spec?.volumes ? [] : [{ op: 'add', path: '/spec/volumes', value: [] }]),
      { op: 'add', path: '/spec/volumes/-', value: { name: 'aws-iam-token', projected: { sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', expirationSeconds: 86400, path: 'token' } }] } } },
    ];
  };

  const server = https.createServer({ key: readFileSync(path.join(dir, 'key.pem')), cert }, (req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const review = JSON.parse(body) as AdmissionReview;
      mutate(review).then(
        (patch) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              apiVersion: 'admission.k8s.io/v1',
              kind: 'AdmissionReview',
              response: { uid: review.request.uid, allowed: true, ...(patch.length ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') } : {}) },
            }),
          );
        },
        (err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const name = `keyless-test-irsa-${namespace}`;
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  await admission.createMutatingWebhookConfiguration({
    body: {
      metadata: { name },
      webhooks: [
        {
          name: 'irsa.test.keyless.dev',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Fail',
          clientConfig: { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/mutate`, caBundle: cert.toString('base64') },
          rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
        },
      ],
    },
  });
  return {
    stop: async () => {
      await admission.deleteMutatingWebhookConfiguration({ name });
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
