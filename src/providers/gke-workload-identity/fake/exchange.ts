// An in-memory GcpExchangePort over FakeGcp: Security Token Service accepts a token for the identity namespace of its
// audience (the pool), and impersonation needs roles/iam.workloadIdentityUser for serviceAccount:POOL[NS/SA] on the
// Google service account, as the metadata server's exchange does. With Workload Identity Federation (the audience is a
// provider's full name) the token's audience must be that name (with or without https:), and the member is the pool's
// principal for the token's subject.
import { CloudError } from '../../cloud-error.ts';
import { claimsOf } from '../../fake/token.ts';
import type { GcpExchangePort } from '../exchange-port.ts';
import type { FakeGcp } from './gcp.ts';

const FEDERATED = /^\/\/iam\.googleapis\.com\/(projects\/([0-9]+)\/locations\/global\/workloadIdentityPools\/([^/]+)\/providers\/[^/]+)$/;

export class FakeGcpExchange implements GcpExchangePort {
  readonly #gcp: FakeGcp;

  constructor(gcp: FakeGcp) {
    this.#gcp = gcp;
  }

  async exchange(input: { audience: string; token: string; impersonate?: string }): Promise<void> {
    const { aud, sub, iss } = claimsOf(input.token);
    const federated = FEDERATED.exec(input.audience);
    let member: string;
    if (federated) {
      const [, name = '', number = '', pool = ''] = federated;
      if (aud !== `https://iam.googleapis.com/${name}` && aud !== `//iam.googleapis.com/${name}`) {
        throw new CloudError('terminal', 'invalid_grant', 'ExchangeToken', `The audience in ID Token [${aud}] does not match the expected audience.`);
      }
      member = `principal://iam.googleapis.com/projects/${number}/locations/global/workloadIdentityPools/${pool}/subject/${sub}`;
    } else {
      const [, pool] = input.audience.split(':');
      if (input.audience !== `identitynamespace:${aud}:${iss}` || pool !== aud) {
        throw new CloudError('terminal', 'invalid_grant', 'ExchangeToken', `The audience in ID Token [${aud}] does not match the expected audience.`);
      }
      const [, , namespace = '', serviceAccount = ''] = sub.split(':');
      member = `serviceAccount:${aud}[${namespace}/${serviceAccount}]`;
    }
    if (!input.impersonate) return;
    const project = input.impersonate.split('@')[1]?.split('.')[0] ?? '';
    const policy = this.#gcp.policy({ kind: 'serviceAccount', project, email: input.impersonate });
    if (!(policy.bindings ?? []).some((b) => b.role === 'roles/iam.workloadIdentityUser' && b.members.includes(member))) {
      throw new CloudError('terminal', 'PERMISSION_DENIED', 'ExchangeToken', "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).");
    }
  }
}
